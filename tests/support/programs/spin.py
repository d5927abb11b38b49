"""Burns CPU until killed: a program's child whose cost should count for the program."""

while True:
    pass
