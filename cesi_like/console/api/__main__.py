"""`python -m cesi_like.console.api > docs/api.md`: the API's reference, written from its
OpenAPI document (a test fails when the file and the document differ)."""

from .openapi import document, markdown

print(markdown(document()), end="")
