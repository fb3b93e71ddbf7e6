"""Salesforce auth through simple-salesforce over HTTP: JWT bearer, password + token, session id; login
hosts; secrets only from the environment and never in a log line or an error message."""

from __future__ import annotations

import logging
import pickle

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import AuthError, ConfigError
from connectors.salesforce import SalesforceConnector
from testing.salesforce import FakeSalesforce

CONSUMER_KEY = "3MVG9consumer-key-for-tests"


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        yield f


def jwt_env(fake, private: str, prefix: str = "ACME_") -> dict[str, str]:
    return fake.env(prefix, "jwt", SF_CONSUMER_KEY=CONSUMER_KEY, SF_PRIVATE_KEY=private)


def test_jwt_bearer_login_on_production_host(fake, rsa_pair):
    private, public = rsa_pair
    fake.trust_jwt_key(CONSUMER_KEY, public)
    fake.insert("Account", [{"Name": "Acme"}])
    connector = fake.connector("jwt", env_prefix="ACME_", env=jwt_env(fake, private), domain="login")
    pages = list(connector.pull("account", None))
    assert [r.name for p in pages for r in p.records] == ["Acme"]
    assert fake.login_hosts == ["login.salesforce.com"]
    assert fake.calls["auth"] == 1


def test_jwt_private_key_from_a_file(fake, rsa_pair, tmp_path):
    private, public = rsa_pair
    fake.trust_jwt_key(CONSUMER_KEY, public)
    (tmp_path / "key.pem").write_text(private)
    env = fake.env(
        "ACME_", "jwt", SF_CONSUMER_KEY=CONSUMER_KEY, SF_PRIVATE_KEY_FILE=str(tmp_path / "key.pem")
    )
    connector = fake.connector("jwt", env_prefix="ACME_", env=env)
    assert connector.check_fields(["account"])  # logged in, described: owned fields not installed yet


def test_jwt_on_my_domain_posts_there_with_the_login_audience(fake, rsa_pair):
    private, public = rsa_pair
    fake.trust_jwt_key(CONSUMER_KEY, public)
    connector = fake.connector(
        "jwt", env_prefix="ACME_", env=jwt_env(fake, private), domain="acme.my.salesforce.com"
    )
    connector.check_fields(["lead"])
    assert fake.login_hosts == ["acme.my.salesforce.com"]  # the fake accepts only the login audience


def test_jwt_on_a_sandbox_uses_test_host_and_audience(rsa_pair):
    private, public = rsa_pair
    with FakeSalesforce(sandbox=True, instance_host="acme--uat.sandbox.my.salesforce.com") as fake:
        fake.trust_jwt_key(CONSUMER_KEY, public)
        connector = fake.connector("jwt", env_prefix="ACME_", env=jwt_env(fake, private), domain="test")
        connector.check_fields(["lead"])
        assert fake.login_hosts == ["test.salesforce.com"]
        my_domain = fake.connector(
            "jwt",
            env_prefix="ACME_",
            env=jwt_env(fake, private),
            domain="acme--uat.sandbox.my.salesforce.com",
        )
        my_domain.check_fields(["lead"])
        assert fake.login_hosts[-1] == "acme--uat.sandbox.my.salesforce.com"
        wrong = fake.connector("jwt", env_prefix="ACME_", env=jwt_env(fake, private), domain="login")
        with pytest.raises(AuthError, match="invalid_grant"):
            wrong.check_fields(["lead"])


def test_jwt_with_an_untrusted_key_is_an_auth_error(fake, rsa_pair):
    private, _ = rsa_pair
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    fake.trust_jwt_key(
        CONSUMER_KEY,
        other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    connector = fake.connector("jwt", env_prefix="ACME_", env=jwt_env(fake, private))
    with pytest.raises(AuthError) as info:
        connector.check_fields(["account"])
    assert info.value.code == "invalid_grant"
    assert not info.value.transient


def test_password_login_with_security_token_on_my_domain(fake):
    connector = fake.connector("password", domain="acme.my.salesforce.com")
    assert len(connector.check_fields(["account", "lead"])) == 14
    assert fake.login_hosts == ["acme.my.salesforce.com"]


def test_wrong_password_is_an_auth_error_naming_no_secret(fake, caplog):
    caplog.set_level(logging.DEBUG)
    env = fake.env("ACME_", "password", SF_PASSWORD="wrong-Secret-123")
    connector = fake.connector("password", env_prefix="ACME_", env=env)
    with pytest.raises(AuthError) as info:
        connector.check_fields(["account"])
    assert "INVALID_LOGIN" in str(info.value)
    assert_no_secret(
        [str(info.value), repr(info.value), *[r.getMessage() for r in caplog.records]],
        ["wrong-Secret-123", fake.security_token],
    )


def test_session_id_auth_works_and_cannot_renew(fake):
    fake.insert("Account", [{"Name": "Acme"}])
    env = fake.env("ACME_", "session")
    connector = fake.connector("session", env_prefix="ACME_", env=env)
    assert [r.name for p in connector.pull("account", None) for r in p.records] == ["Acme"]
    assert fake.calls["auth"] == 0
    fake.expire_sessions()
    with pytest.raises(AuthError, match="ACME_SF_SESSION_ID") as info:
        connector.check_fields(["lead"])
    assert env["ACME_SF_SESSION_ID"] not in str(info.value)


@pytest.mark.parametrize(
    ("auth", "present", "missing"),
    [
        ("password", {"SF_USERNAME": "u"}, "ACME_SF_PASSWORD"),
        ("password", {}, "ACME_SF_USERNAME"),
        ("jwt", {"SF_USERNAME": "u", "SF_PRIVATE_KEY": "x"}, "ACME_SF_CONSUMER_KEY"),
        ("jwt", {"SF_USERNAME": "u", "SF_CONSUMER_KEY": "k"}, "ACME_SF_PRIVATE_KEY"),
        ("session", {}, "ACME_SF_SESSION_ID"),
    ],
)
def test_a_missing_variable_is_named(auth, present, missing):
    env = {"ACME_" + k: v for k, v in present.items()}
    options = {"auth": auth, "instance_url": "https://acme.my.salesforce.com"}
    with pytest.raises(AuthError, match=missing):
        SalesforceConnector.from_config(options, env_prefix="ACME_", env=env)


def test_a_bad_private_key_is_reported_without_its_text(fake):
    env = jwt_env(fake, "-----BEGIN PRIVATE KEY-----\nnot-really-a-key-material\n-----END PRIVATE KEY-----")
    connector = fake.connector("jwt", env_prefix="ACME_", env=env)
    with pytest.raises(AuthError, match="ACME_SF_PRIVATE_KEY is not a usable") as info:
        connector.check_fields(["account"])
    assert "not-really-a-key-material" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"auth": "kerberos"}, "auth"),
        ({"domain": "example.com"}, "domain: Value error, must be 'login', 'test' or a My Domain host"),
        ({"auth": "session"}, "needs instance_url"),
        ({"reserve_share": 1.5}, "reserve_share"),
        ({"page_size": 5000}, "page_size"),
        ({"owned_fields": {"fit_score": "Score"}}, "must be a custom field API name"),
        ({"fields": {"account": {"Bad Name": "x"}}}, "is not a Salesforce field API name"),
        ({"passwrd": "typo"}, "passwrd: Extra inputs are not permitted"),
    ],
)
def test_invalid_options_fail_fast_with_a_clear_message(options, message):
    with pytest.raises(ConfigError, match=message):
        SalesforceConnector.from_config(options, env_prefix="X_", env={})


def test_errors_pickle_and_credentials_do_not_show(fake):
    env = fake.env("ACME_", "password")
    connector = fake.connector("password", env_prefix="ACME_", env=env)
    assert fake.password not in repr(connector.client.credentials)
    err = AuthError("x", code="INVALID_LOGIN")
    assert pickle.loads(pickle.dumps(err)).code == "INVALID_LOGIN"


def test_no_secret_in_any_log_record_or_error(fake, rsa_pair, caplog):
    """Every auth path, including failures and renewals, with DEBUG logging of every library on."""
    caplog.set_level(logging.DEBUG)
    private, public = rsa_pair
    fake.trust_jwt_key(CONSUMER_KEY, public)
    fake.add_owned_fields()
    fake.insert("Account", [{"Name": f"A{i}"} for i in range(3)])
    secrets_ = [
        fake.password,
        fake.security_token,
        fake.password + fake.security_token,
        CONSUMER_KEY,
        *[line for line in private.splitlines() if len(line) > 20],
    ]
    texts: list[str] = []
    for auth in ("password", "jwt", "session"):
        if auth == "session":
            env = fake.env("S_", "session")  # a fresh session: the previous round expired them all
            secrets_.append(env["S_SF_SESSION_ID"])
        else:
            env = jwt_env(fake, private, "S_") if auth == "jwt" else fake.env("S_", auth)
        connector = fake.connector(auth, env_prefix="S_", env=env)
        list(connector.pull("account", None))
        fake.expire_sessions()
        try:
            connector.check_fields(["lead"])
        except AuthError as exc:  # session auth cannot renew
            texts += [str(exc), repr(exc)]
        connector.close()
    bad = fake.connector(
        "password", env_prefix="B_", env=fake.env("B_", "password", SF_PASSWORD="Hunter2-xyz")
    )
    with pytest.raises(AuthError) as info:
        bad.check_fields(["account"])
    secrets_.append("Hunter2-xyz")
    texts += [str(info.value), repr(info.value)]
    texts += [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    assert any("re-authenticating" in t for t in texts)
    assert_no_secret(texts, secrets_)


def assert_no_secret(texts: list[str], secrets_: list[str]) -> None:
    for text in texts:
        for secret in secrets_:
            assert secret not in text, f"a secret leaked into: {text[:200]}"


# -- a login server of any name ------------------------------------------------------------------------


def test_password_login_at_a_custom_login_url():
    with FakeSalesforce(login_host="sso.acme-proxy.example") as fake:
        fake.insert("Account", [{"Name": "Acme"}])
        connector = fake.connector("password", login_url="https://sso.acme-proxy.example/")
        assert [r.name for p in connector.pull("account", None) for r in p.records] == ["Acme"]
        assert fake.login_hosts == ["sso.acme-proxy.example"]


def test_jwt_login_at_a_custom_login_url_with_its_audience(rsa_pair):
    private, public = rsa_pair
    with FakeSalesforce(
        login_host="login.private.example", jwt_audience="https://login.private.example"
    ) as fake:
        fake.trust_jwt_key(CONSUMER_KEY, public)
        fake.insert("Account", [{"Name": "Acme"}])
        options = {
            "login_url": "https://login.private.example",
            "jwt_audience": "https://login.private.example",
        }
        connector = fake.connector("jwt", env_prefix="ACME_", env=jwt_env(fake, private), **options)
        assert [r.name for p in connector.pull("account", None) for r in p.records] == ["Acme"]
        assert fake.login_hosts == ["login.private.example"]
        # The default audience is Salesforce's login server, which this org does not accept.
        wrong = fake.connector(
            "jwt", env_prefix="ACME_", env=jwt_env(fake, private), login_url="https://login.private.example"
        )
        with pytest.raises(AuthError, match="audience"):
            wrong.check_fields(["account"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"login_url": "http://sso.example"}, "login_url: Value error, must be an https:// URL"),
        ({"login_url": "https://sso.example", "domain": "test"}, "either domain or login_url"),
        ({"jwt_audience": "login.salesforce.com"}, "jwt_audience: Value error, must be an https:// URL"),
    ],
)
def test_login_url_options_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        SalesforceConnector.from_config(options, env_prefix="X_", env={})
