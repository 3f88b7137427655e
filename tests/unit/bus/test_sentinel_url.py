"""redis+sentinel:// URLs → redis-py's Sentinel and Celery's sentinel:// settings. Pure."""

from __future__ import annotations

import pytest

from bus.app import create_app
from bus.errors import ConfigError
from bus.redis_url import celery_conf_for
from bus.sentinel_url import SentinelUrl, is_sentinel
from bus.settings import Settings

URL = "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,10.0.0.3:26380/mymaster/2"


def test_hosts_master_db_and_password_are_read() -> None:
    got = SentinelUrl.parse(URL + "?socket_timeout=5&sentinel_password=sp")
    assert got.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380))
    assert (got.master_name, got.db, got.password, got.username) == ("mymaster", 2, "s3cret", None)
    assert got.master_kwargs(socket_keepalive=True) == {
        "socket_keepalive": True,
        "socket_timeout": 5.0,
        "db": 2,
        "password": "s3cret",
    }
    assert got.sentinel_auth == {"password": "sp"}
    assert "s3cret" not in got.display and "sp&" not in got.display + "&"


def test_celery_gets_one_sentinel_url_per_host_and_the_master_name() -> None:
    conf = celery_conf_for(
        URL + "?sentinel_password=sp", result_backend=True, transport_options={"x": 1}
    )
    assert conf["broker_url"] == (
        "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26379/2;"
        "sentinel://:s3cret@10.0.0.3:26380/2"
    )
    assert conf["broker_transport_options"] == {
        "x": 1,
        "master_name": "mymaster",
        "sentinel_kwargs": {"password": "sp"},
    }
    assert conf["result_backend"] == conf["broker_url"]
    assert conf["result_backend_transport_options"]["master_name"] == "mymaster"


def test_the_celery_app_uses_the_sentinel_transport() -> None:
    app = create_app(Settings(redis_url="redis+sentinel://127.0.0.1:1/mymaster"))
    assert app.conf.broker_url == "sentinel://127.0.0.1:1/0"
    assert app.conf.broker_transport_options["master_name"] == "mymaster"
    assert app.conf.broker_transport_options["visibility_timeout"] == 3600


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1:26379", "expected the master name"),
        ("redis+sentinel:///mymaster", "no Sentinel host"),
        ("redis+sentinel://h1:x/mymaster", "is not host:port"),
        ("redis+sentinel://h1/mymaster/zero", "is not a number"),
        ("redis+sentinel://h1/mymaster?ssl_cert_reqs=none", "unsupported option ssl_cert_reqs"),
    ],
)
def test_a_bad_sentinel_url_is_a_config_error_saying_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SentinelUrl.parse(url)


def test_only_the_sentinel_scheme_is_a_sentinel_url() -> None:
    assert is_sentinel(" REDIS+SENTINEL://h/m")
    assert not is_sentinel("redis://h:6379/0") and not is_sentinel(None)
