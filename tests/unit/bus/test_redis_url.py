"""bus/redis_url.py and bus/redis.py without a server: a Redis URL becomes the options of
every client (redis-py, asyncio, Celery broker and result backend) in one place, and each
way of failing to reach Redis becomes one actionable line without the password."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
import redis

from bus.app import create_app
from bus.errors import ConfigError
from bus.redis import client_for_url, connect_async, describe_redis_error
from bus.redis_url import RedisUrl
from bus.settings import Settings
from ragrelay.bench.rawchain import create_raw_app

PASSWORD = "hunter2-pw"
BASE = f"rediss://:{PASSWORD}@cache.internal:6380/2"
SPELLINGS = {
    "CERT_REQUIRED": ssl.CERT_REQUIRED,
    "required": ssl.CERT_REQUIRED,
    "CERT_OPTIONAL": ssl.CERT_OPTIONAL,
    "optional": ssl.CERT_OPTIONAL,
    "CERT_NONE": ssl.CERT_NONE,
    "none": ssl.CERT_NONE,
}


@pytest.mark.parametrize(("spelling", "mode"), SPELLINGS.items())
def test_every_spelling_of_ssl_cert_reqs_reaches_every_client(
    spelling: str, mode: ssl.VerifyMode
) -> None:
    url = f"{BASE}?ssl_cert_reqs={spelling}&ssl_ca_certs=/etc/ca.pem&socket_timeout=5"
    target = RedisUrl.parse(url)
    assert target.url == BASE and target.tls and target.options == {"socket_timeout": 5.0}
    assert target.ssl_options == {"ssl_cert_reqs": mode, "ssl_ca_certs": "/etc/ca.pem"}

    # redis-py: the connection is what rejected CERT_REQUIRED; build one (no connect).
    conn: Any = client_for_url(url).connection_pool.make_connection()
    assert isinstance(conn, redis.SSLConnection) and conn.cert_reqs == mode
    assert conn.ca_certs == "/etc/ca.pem" and conn.socket_timeout == 5

    apool = connect_async(Settings(redis_url=url)).connection_pool
    aconn: Any = apool.make_connection()  # type: ignore[no-untyped-call]
    assert aconn.ssl_context.cert_reqs == mode

    broker = create_app(Settings(redis_url=url)).connection_for_write()
    assert broker.transport_cls == "rediss"
    assert broker.ssl == {"ssl_cert_reqs": mode, "ssl_ca_certs": "/etc/ca.pem"}
    assert broker.transport_options["socket_timeout"] == 5.0
    assert broker.transport_options["unacked_restore_throttle"] == 1  # ours, kept

    backend = create_raw_app(url).backend  # Celery validates ssl_cert_reqs here
    assert backend.connparams["ssl_cert_reqs"] == mode
    assert backend.connparams["connection_class"] is redis.SSLConnection
    assert backend.connparams["socket_timeout"] == 5.0


def test_socket_options_in_a_plain_url_reach_kombu_as_transport_options() -> None:
    """kombu would pass ?socket_timeout=5 to its Connection and fail with a TypeError."""
    url = "redis://:pw@127.0.0.1:6379?db=3&socket_timeout=5&retry_on_timeout=yes"
    broker = create_app(Settings(redis_url=url)).connection_for_write()
    assert broker.as_uri(include_password=True) == "redis://:pw@127.0.0.1:6379/3"
    assert broker.transport_options["socket_timeout"] == 5.0
    assert broker.transport_options["retry_on_timeout"] is True
    conn: Any = client_for_url(url, socket_timeout=30).connection_pool.make_connection()
    assert conn.socket_timeout == 5.0 and conn.db == 3  # the URL's options win over defaults


def test_rediss_without_options_verifies_the_certificate_in_every_client() -> None:
    """kombu alone would fall back to CERT_NONE with a warning."""
    target = RedisUrl.parse(BASE)
    assert target.ssl_options == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert create_app(Settings(redis_url=BASE)).connection_for_write().ssl == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED
    }


def test_plain_urls_pass_through() -> None:
    target = RedisUrl.parse("redis://:pw@127.0.0.1:6379/0")
    assert target == RedisUrl("redis://:pw@127.0.0.1:6379/0")
    assert target.celery_conf() == {
        "broker_url": "redis://:pw@127.0.0.1:6379/0",
        "broker_transport_options": {},
    }
    assert not isinstance(
        client_for_url(target.url).connection_pool.make_connection(), redis.SSLConnection
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"{BASE}?ssl_cert_reqs=maybe", "ssl_cert_reqs='maybe' is not one of required"),
        (f"redis://:{PASSWORD}@h:6379/0?ssl_cert_reqs=required", "use a rediss:// URL for TLS"),
        (f"{BASE}?ssl_min_version=3", "unsupported option ssl_min_version"),
        (f"{BASE}?protocol=3", "unsupported option protocol"),
        (f"{BASE}?socket_timeout=soon", "socket_timeout='soon' is not a valid value"),
        (f"{BASE}?ssl_check_hostname=perhaps", "is not true or false"),
        (f"http://:{PASSWORD}@h:6379/0", "is not a Redis URL"),
        (f"redis://:{PASSWORD}@h:port/0", "is not a Redis URL"),
    ],
)
def test_bad_urls_fail_at_start_up_without_showing_the_password(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        client_for_url(url)
    assert says in str(info.value) and PASSWORD not in str(info.value)


def _wrapped(cause: BaseException, exc: redis.RedisError) -> redis.RedisError:
    exc.__cause__ = cause
    return exc


PLAIN = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
TLS = f"rediss://:{PASSWORD}@127.0.0.1:6380/0"


@pytest.mark.parametrize(
    ("exc", "url", "says"),
    [
        (
            redis.AuthenticationError("invalid username-password pair or user is disabled."),
            PLAIN,
            "Redis at redis://:***@127.0.0.1:6379/0 refused the password: check RAGRELAY_REDIS_URL",
        ),
        (redis.ResponseError("NOAUTH Authentication required."), PLAIN, "refused the password"),
        (
            redis.ResponseError("WRONGPASS invalid username-password pair"),
            PLAIN,
            "refused the password",
        ),
        (
            _wrapped(
                ConnectionRefusedError(111, "refused"),
                redis.ConnectionError(
                    "Error 111 connecting to 127.0.0.1:6379. Connection refused."
                ),
            ),
            PLAIN,
            "cannot reach Redis at redis://:***@127.0.0.1:6379/0: connection refused. Start "
            "redis-server",
        ),
        (
            _wrapped(
                ssl.SSLCertVerificationError(1, "certificate verify failed"),
                redis.ConnectionError("Error 1 connecting"),
            ),
            TLS,
            "TLS to Redis at rediss://:***@127.0.0.1:6380/0 failed: the server's certificate did "
            "not verify",
        ),
        (
            _wrapped(ssl.SSLError(1, "wrong version number"), redis.ConnectionError("Error 1")),
            TLS,
            "TLS to Redis at rediss://:***@127.0.0.1:6380/0 failed",
        ),
        (
            _wrapped(
                FileNotFoundError(2, "No such file or directory"),
                redis.ConnectionError("Error 2 connecting"),
            ),
            TLS,
            "cannot read a file named by ssl_ca_certs",
        ),
        (
            redis.TimeoutError("Timeout connecting to server"),
            TLS,
            "does the server speak TLS on this port?",
        ),
        (
            _wrapped(
                ConnectionResetError(104, "reset"),
                redis.ConnectionError(
                    "Error while reading from 127.0.0.1:6380 : (104, 'Connection reset by peer')"
                ),
            ),
            PLAIN,
            "if it only accepts TLS, use a rediss:// URL",
        ),
        (
            _wrapped(
                socket.gaierror(-2, "Name or service not known"),
                redis.ConnectionError("Error -2 connecting to nohost:6379."),
            ),
            PLAIN,
            "unknown host",
        ),
    ],
)
def test_each_failure_has_its_own_message(exc: redis.RedisError, url: str, says: str) -> None:
    message = describe_redis_error(exc, url)
    assert says in message
    assert PASSWORD not in message and "\n" not in message
