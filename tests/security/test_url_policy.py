"""Issue 13, case 2: result links to private addresses, and their bodies, through the real adapters over loopback.

Before the URL policy, a result URL could name any https host and plain http on any
loopback port, redirects into loopback were followed, and the first 200 bytes of a
text answer were kept in ``error_detail`` and shown on the History page. Here a fake
provider of the test's own answers such links, and a second listener stands for the
internal service they point at: it must receive nothing, and nothing it could have
said may be stored.
"""

from __future__ import annotations

import httpcore
import pytest

from providers.errors import JobFailed, ProviderUnavailable
from providers.http_client import MAX_REDIRECTS
from providers.registry import provider_class
from providers.types import ImageRequest
from tests.security.fakes import FakeProvider, FakeServer

# The policy's own module is imported inside the tests that use it, so the adapter tests below
# also run (and fail) against the code from before it existed.

REQUEST = ImageRequest(prompt="a lighthouse at dusk", model="gpt-image-2", size="1:1", quality="low")


def evolink(fake: FakeProvider):
    return provider_class("evolink")("sk-evolink-FAKE0123456789abcdef", f"{fake.url}/evolink/v1",
                                      retry_sleep=lambda _s: None)


# --- the rule itself ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
        ("https://[fd00:ec2::254]/latest/", "cloud metadata"),
        ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
        ("https://10.0.0.5/x.png", "private-network"),
        ("https://172.16.3.4/x.png", "private-network"),
        ("https://192.168.1.1/x.png", "private-network"),
        ("http://[::1]:5432/", "this machine"),
        ("https://127.0.0.1:8765/_admin/stats", "this machine"),
        ("https://localhost/x.png", "this machine"),
        ("https://2130706433/x.png", "this machine"),  # 127.0.0.1 written as one number
        ("https://0x7f.0.0.1/x.png", "this machine"),
        ("https://[::ffff:127.0.0.1]/x.png", "this machine"),  # IPv4-mapped IPv6
        ("https://0.0.0.0/x.png", "this machine"),
        ("https://169.254.10.10/x.png", "link-local"),
        ("https://[fe80::1]/x.png", "link-local"),
        ("https://[fc00::5]/x.png", "unique-local"),
        ("https://100.64.0.9/x.png", "carrier-grade NAT"),
        ("https://printer.local/x.png", "private network"),
        ("http://cdn.example.com/x.png", "only https"),
        ("https://user:pw@cdn.example.com/x.png", "user name or password"),
        ("ftp://cdn.example.com/x.png", "must start with https"),
        ("javascript:alert(1)", "must start with https"),
    ],
)
def test_refused_links_say_why(url, said):
    from providers.urlpolicy import UrlRefused, check

    with pytest.raises(UrlRefused) as info:
        check(url, resolve=lambda host, port: ["93.184.216.34"])
    assert said in info.value.reason


def test_a_public_https_link_passes_and_a_name_is_resolved():
    from providers.urlpolicy import UrlRefused, check

    assert check("https://cdn.example.com/x.png", resolve=lambda h, p: ["93.184.216.34"]).host == "cdn.example.com"
    # A public-looking name that resolves to this machine (or rebinds to it) is refused by its address.
    with pytest.raises(UrlRefused) as info:
        check("https://rebind.example.com/x.png", resolve=lambda h, p: ["93.184.216.34", "127.0.0.1"])
    assert "resolves to 127.0.0.1" in info.value.reason and "this machine" in info.value.reason


def test_allowed_origins_are_exact():
    from providers.urlpolicy import UrlRefused, check_literal, origin_of

    emulator = origin_of("http://127.0.0.1:8765/openai")
    assert emulator is not None
    assert check_literal("http://127.0.0.1:8765/_files/a.png", (emulator,)) == emulator
    for other in ("http://127.0.0.1:8766/_files/a.png", "https://127.0.0.1:8765/x", "http://localhost:5432/"):
        with pytest.raises(UrlRefused):
            check_literal(other, (emulator,))


def test_the_socket_layer_connects_only_to_checked_addresses(internal: FakeServer):
    """The check before a request and the connection each resolve: the socket layer checks what it connects to."""
    from providers import urlpolicy
    from providers.urlpolicy import UrlPolicy, UrlRefused

    backend = urlpolicy.GuardedBackend(UrlPolicy())
    with pytest.raises(UrlRefused) as info:
        backend.connect_tcp("localhost", internal.port, timeout=2)
    assert "this machine" in info.value.reason
    allowed = urlpolicy.GuardedBackend(UrlPolicy.for_base_urls(internal.url))
    stream = allowed.connect_tcp("127.0.0.1", internal.port, timeout=2)  # the operator's own origin
    stream.close()
    assert isinstance(stream, httpcore.NetworkStream) and internal.hits == 0


# --- through the adapter, over loopback -------------------------------------------------------
@pytest.mark.parametrize(
    "result_url",
    [
        "http://127.0.0.1:{internal}/admin",  # another loopback port: plain http used to be allowed
        "https://127.0.0.1:{internal}/admin",
        "http://localhost:{internal}/admin",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/out.png",
        "http://[::1]:5432/",
        "https://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_result_links_to_private_addresses_are_never_fetched(fake: FakeProvider, internal: FakeServer, result_url):
    fake.result_url = result_url.replace("{internal}", str(internal.port))
    with pytest.raises(JobFailed) as info:
        evolink(fake).generate(REQUEST)
    err = info.value
    assert err.code == "url_refused" and err.sent is True
    assert "was not taken in" in str(err) and "link this app will not open" in str(err)
    assert internal.hits == 0
    assert "INTERNAL-SECRET" not in str(err) and "INTERNAL-SECRET" not in (err.detail or "")


def test_a_redirect_into_loopback_is_refused_at_that_hop(fake: FakeProvider, internal: FakeServer):
    # The first hop is the provider's own origin (allowed); the redirect it answers points inside.
    fake.files["/files/out.png"] = (302, {"Location": f"http://127.0.0.1:{internal.port}/secret"}, b"")
    with pytest.raises(JobFailed) as info:
        evolink(fake).generate(REQUEST)
    assert info.value.code == "url_refused" and "this machine" in str(info.value)
    assert internal.hits == 0
    assert [s.path for s in fake.seen if s.path.startswith("/files/")] == ["/files/out.png"]


def test_a_redirect_to_the_metadata_service_is_refused(fake: FakeProvider):
    fake.files["/files/out.png"] = (301, {"Location": "https://169.254.169.254/latest/meta-data/"}, b"")
    with pytest.raises(JobFailed) as info:
        evolink(fake).generate(REQUEST)
    assert "cloud metadata" in str(info.value)


def test_redirects_stop_after_the_hop_limit_and_are_not_retried(fake: FakeProvider):
    fake.files["/files/out.png"] = (302, {"Location": "/files/out.png"}, b"")  # a loop on its own origin
    with pytest.raises(ProviderUnavailable) as info:
        evolink(fake).result(evolink(fake).status("task-1"))
    assert info.value.code == "too_many_redirects" and "more than 5 times" in str(info.value)
    assert len([s for s in fake.seen if s.path == "/files/out.png"]) == MAX_REDIRECTS + 1


def test_a_non_image_answer_keeps_only_its_status_and_type(fake: FakeProvider):
    fake.files["/files/out.png"] = (200, {"Content-Type": "text/html"}, b"<html>INTERNAL-SECRET dashboard</html>")
    provider = evolink(fake)
    with pytest.raises(ProviderUnavailable) as info:
        provider.result(provider.status("task-1"))
    assert info.value.detail == "HTTP 200, text/html, 38 bytes, not an image"
    # A failed download is never read at all: its status and type are all that is kept.
    fake.files["/files/out.png"] = (404, {"Content-Type": "text/plain"}, b"INTERNAL-SECRET not found")
    with pytest.raises(JobFailed) as gone:
        provider.result(provider.status("task-1"))
    assert gone.value.code == "result_expired" and gone.value.detail == "HTTP 404, text/plain"


def test_nothing_from_the_internal_service_is_stored_or_shown(fake, internal, run_job):
    """The whole way: runner, store, and the words the History page shows."""
    from core.history import explain

    fake.result_url = f"http://127.0.0.1:{internal.port}/"
    job = run_job("evolink", REQUEST)
    assert job.status == "failed" and job.error_code == "url_refused"
    assert internal.hits == 0
    stored = " ".join(str(v) for v in (job.error_message, job.error_detail))
    assert "INTERNAL-SECRET" not in stored
    why = explain.explain(job)
    assert why.title == "EvoLink's image was not taken in" and not why.can_recheck
    # The job was made at the provider: its estimate stands, flagged, rather than vanishing.
    assert job.billed is not None and job.billed.estimated
