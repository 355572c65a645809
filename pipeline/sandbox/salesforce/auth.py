"""Who may call the org sandbox: the integration user, its connected app, and the sessions issued.

The login flows follow what simple-salesforce sends and parses (reference §2): OAuth password,
client-credentials and JWT-bearer grants, and the SOAP partner `login` call. Loopback is treated as
one of the org's trusted IP ranges, so the password is accepted with or without the security token.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.salesforce.ids import make_id
from pipeline.sandbox.files import write_private


class AuthError(Exception):
    """A failed login, carrying the OAuth `error` code and description Salesforce would send."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Credentials:
    org_id: str
    user_id: str
    username: str
    password: str
    security_token: str
    client_id: str
    client_secret: str

    @classmethod
    def generate(cls, username: str) -> Credentials:
        return cls(
            org_id=make_id("00D", 1),
            user_id=make_id("005", 1),
            username=username,
            password=secrets.token_urlsafe(18),
            security_token=secrets.token_urlsafe(18),
            client_id="3MVG9" + secrets.token_urlsafe(60)[:80],
            client_secret=secrets.token_hex(32).upper(),
        )

    @classmethod
    def load_or_create(cls, path: Path, username: str) -> Credentials:
        """Credentials survive restarts of one state dir, so a saved `.env` keeps working."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        creds = cls.generate(username)
        write_private(path, json.dumps(asdict(creds), indent=2))
        return creds

    def password_matches(self, password: str) -> bool:
        return secrets.compare_digest(password, self.password) or secrets.compare_digest(
            password, self.password + self.security_token
        )


class JwtKey:
    """The connected app's certificate key pair; a JWT client signs with the private half."""

    def __init__(self, path: Path) -> None:
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_private(path, pem)
        self.path = path
        self.public_key = key.public_key()


class SessionStore:
    """Issued access tokens and their expiry, in memory only: a restart logs everyone out."""

    def __init__(self, org_id: str, ttl_seconds: float) -> None:
        self.org_id = org_id
        self.ttl_seconds = ttl_seconds
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._lock:
            self._expires[token] = time.monotonic() + self.ttl_seconds
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._expires.get(token)
            if expires is None:
                return False
            if expires <= time.monotonic():
                del self._expires[token]
                return False
            return True

    def expire(self, token: str) -> None:
        with self._lock:
            self._expires.pop(token, None)


class Authenticator:
    """Checks each login flow's credentials and issues a session for the integration user."""

    # `aud` values simple-salesforce puts in a JWT assertion for the standard login hosts.
    JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")

    def __init__(self, creds: Credentials, sessions: SessionStore, jwt_key: JwtKey) -> None:
        self.creds = creds
        self.sessions = sessions
        self.jwt_key = jwt_key

    def _check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if not client_id or not secrets.compare_digest(client_id, self.creds.client_id):
            raise AuthError("invalid_client_id", "client identifier invalid")
        if client_secret is None or not secrets.compare_digest(
            client_secret, self.creds.client_secret
        ):
            raise AuthError("invalid_client", "invalid client credentials")

    def _check_user(self, username: str | None, password: str | None) -> None:
        if username != self.creds.username or not self.creds.password_matches(password or ""):
            raise AuthError("invalid_grant", "authentication failure")

    def oauth_token(self, form: dict[str, str], authorization: str | None) -> str:
        """Validate an OAuth token request and return a new access token."""
        grant = form.get("grant_type")
        if grant == "password":
            self._check_client(form.get("client_id"), form.get("client_secret"))
            self._check_user(form.get("username"), form.get("password"))
        elif grant == "client_credentials":
            client_id, client_secret = _basic_auth(authorization)
            if client_id is None:
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
            self._check_client(client_id, client_secret)
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            self._check_assertion(form.get("assertion", ""))
        else:
            raise AuthError("unsupported_grant_type", "grant type not supported")
        return self.sessions.issue()

    def _check_assertion(self, assertion: str) -> None:
        try:
            # simple-salesforce sends `exp` as a string, which PyJWT's own check rejects, so the
            # expiry is verified here by hand.
            claims = jwt.decode(
                assertion,
                self.jwt_key.public_key,
                algorithms=["RS256"],
                audience=self.JWT_AUDIENCES,
                options={"verify_exp": False, "require": ["iss", "sub", "aud", "exp"]},
            )
            expires = float(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthError("invalid_grant", "invalid assertion") from exc
        if expires < time.time():
            raise AuthError("invalid_grant", "expired authorization code")
        if claims["iss"] != self.creds.client_id:
            raise AuthError("invalid_client_id", "client identifier invalid")
        if claims["sub"] != self.creds.username:
            raise AuthError("invalid_grant", "user hasn't approved this consumer")

    def soap_login(self, username: str | None, password: str | None) -> str:
        self._check_user(username, password)
        return self.sessions.issue()


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, secret = decoded.partition(":")
    return (user, secret) if sep else (None, None)
