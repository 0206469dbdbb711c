"""RSA key material for the tool's registrations: generated at run time, never stored in the repo.

A world's keys are fresh on every build (never derived from the seed). For an exported world to be
served by a separately started sandbox (`sandbox export`, later `sandbox serve --keys DIR`), the export
writes each registration's public key beside its private key, and the server reads the public keys back
(`load_public_keys`) instead of its fresh ones.
"""
from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PUBLIC_SUFFIX = ".pub.pem"      # keys/<registration>.pub.pem beside keys/<registration>.pem


def new_key_pair() -> tuple[bytes, str]:
    """(private key PEM bytes, public key PEM text) of a fresh RS256 key (2048 bits)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode("ascii")


def public_pem_of(private_pem: bytes) -> str:
    """The public key (SubjectPublicKeyInfo PEM) of a private key PEM."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_keys(directory: Path, names: list[str]) -> dict[str, str]:
    """Public key PEMs of `names` from an export folder (DIR or DIR/keys): <name>.pub.pem, else derived
    from <name>.pem. Raises FileNotFoundError naming the first registration without a key."""
    keys_dir = directory / "keys" if (directory / "keys").is_dir() else directory
    out: dict[str, str] = {}
    for name in names:
        public, private = keys_dir / f"{name}{PUBLIC_SUFFIX}", keys_dir / f"{name}.pem"
        if public.is_file():
            out[name] = public.read_text(encoding="ascii")
        elif private.is_file():
            out[name] = public_pem_of(private.read_bytes())
        else:
            raise FileNotFoundError(2, f"no key for registration {name!r} (exported with another world, size "
                                       "or --profile?)", str(public))
    return out
