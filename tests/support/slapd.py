"""A real OpenLDAP directory for the SSO tests: Debian's `slapd` on loopback ports, with a
plain, a StartTLS-capable and an `ldaps://` listener (certificates from trustme), the
memberof overlay, and a small company in it:

    ou=people: alice (admins), bob (web), carol (web, but disabled), dave (no mapped group),
               erin (web and readers), frank and grace (web: the tests change them)
    ou=groups: admins, web, readers, others (groupOfNames; memberOf kept by the overlay)
    ou=services: cesi (the console's search account)

Entries are added over LDAP after start, not with slapadd, so the overlay sees them."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.waiting import wait_for

SLAPD = "/usr/sbin/slapd"
SCHEMA = Path("/etc/ldap/schema")
BASE = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root secret"
SERVICE_DN = f"cn=cesi,ou=services,{BASE}"
SERVICE_PASSWORD = "service secret"
PASSWORDS = {name: f"{name} pw" for name in
             ("alice", "bob", "carol", "dave", "erin", "frank", "grace")}
GROUPS = {"admins": ["alice"], "web": ["bob", "carol", "erin", "frank", "grace"],
          "readers": ["erin"], "others": ["dave"]}
DISABLED = {"carol"}

needs_slapd = pytest.mark.skipif(
    not Path(SLAPD).exists() or not (SCHEMA / "inetorgperson.schema").exists(),
    reason="OpenLDAP's slapd is not installed (.ci/run installs Debian's slapd)")


@dataclass
class Directory:
    """A running slapd: its URLs, the CA that signed its certificate, and an admin handle."""

    url: str  # ldap:// (plain; StartTLS offered)
    ldaps_url: str
    ca_file: Path
    folder: Path
    process: subprocess.Popen[bytes]

    def admin(self):  # type: ignore[no-untyped-def]
        import ldap3

        return ldap3.Connection(ldap3.Server(self.url), ROOT_DN, ROOT_PASSWORD,
                                auto_bind=True, raise_exceptions=True)

    def user_dn(self, name: str) -> str:
        return f"uid={name},ou=people,{BASE}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},ou=groups,{BASE}"

    def move(self, user: str, from_group: str, to_group: str) -> None:
        import ldap3

        with self.admin() as conn:
            conn.modify(self.group_dn(from_group),
                        {"member": [(ldap3.MODIFY_DELETE, [self.user_dn(user)])]})
            conn.modify(self.group_dn(to_group),
                        {"member": [(ldap3.MODIFY_ADD, [self.user_dn(user)])]})

    def disable(self, user: str) -> None:
        import ldap3

        with self.admin() as conn:
            conn.modify(self.user_dn(user),
                        {"employeeType": [(ldap3.MODIFY_REPLACE, ["disabled"])]})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _config(folder: Path, ca_file: Path, cert: Path, key: Path) -> str:
    schemas = "".join(f"include {SCHEMA / name}.schema\n"
                      for name in ("core", "cosine", "inetorgperson", "nis"))
    return f"""{schemas}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {folder}/slapd.pid
TLSCACertificateFile {ca_file}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}

database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw "{ROOT_PASSWORD}"
directory {folder}/data
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by anonymous auth
"""


def _populate(directory: Directory) -> None:
    with directory.admin() as conn:
        conn.add(BASE, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
        for unit in ("people", "groups", "services"):
            conn.add(f"ou={unit},{BASE}", ["organizationalUnit"], {"ou": unit})
        conn.add(SERVICE_DN, ["organizationalRole", "simpleSecurityObject"],
                 {"cn": "cesi", "userPassword": SERVICE_PASSWORD})
        for name, password in PASSWORDS.items():
            attributes = {"uid": name, "cn": name.title(), "sn": name.title(),
                          "userPassword": password, "mail": f"{name}@example.org"}
            if name in DISABLED:
                attributes["employeeType"] = "disabled"
            conn.add(directory.user_dn(name), ["inetOrgPerson"], attributes)
        for group, members in GROUPS.items():
            conn.add(directory.group_dn(group), ["groupOfNames"],
                     {"cn": group, "member": [directory.user_dn(m) for m in members]})


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def slapd(folder: Path) -> Iterator[Directory]:
    """Start slapd in `folder`, fill it, and stop it afterwards."""
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir()
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert, key = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    conf = folder / "slapd.conf"
    conf.write_text(_config(folder, ca_file, cert, key))
    port, tls_port = free_port(), free_port()
    log = (folder / "slapd.log").open("wb")
    process = subprocess.Popen(
        [SLAPD, "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/",
         "-d", "0"], stdout=log, stderr=subprocess.STDOUT)
    directory = Directory(f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}", ca_file,
                          folder, process)
    try:
        wait_for(lambda: process.poll() is not None or _listening(port), 15, "slapd to listen")
        if process.poll() is not None:
            raise AssertionError(f"slapd ended: {(folder / 'slapd.log').read_text()[-2000:]}")
        _populate(directory)
        yield directory
    finally:
        directory.stop()
        log.close()
        shutil.rmtree(folder / "data", ignore_errors=True)
