"""OAuth 2.0 through the SDK's DropboxOAuth2Flow: consent page, PKCE, refresh, revoke."""

import re
import time
from urllib.parse import parse_qs, urlparse

import dropbox
import pytest
import requests
from dropbox import oauth
from dropbox.exceptions import AuthError

from conftest import APP_KEY, APP_SECRET, REDIRECT_URI


def _flow(emu, use_pkce=False, secret=True):
    flow = oauth.DropboxOAuth2Flow(
        APP_KEY,
        REDIRECT_URI,
        {},
        "csrf",
        consumer_secret=APP_SECRET if secret else None,
        token_access_type="offline",
        use_pkce=use_pkce,
        ca_certs=emu.pem,
    )
    flow.requests_session.trust_env = False
    return flow


def _browser(emu):
    s = requests.Session()
    s.trust_env = False
    s.verify = emu.pem
    return s


def _hidden(html, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, html)
    assert m, f"{name} not in page"
    return m.group(1)


def _consent(emu, url, account_id, decision="allow"):
    b = _browser(emu)
    page = b.get(url)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<button" in page.text and 'method="post"' in page.text
    assert account_id in page.text
    rid = _hidden(page.text, "request_id")
    consent = b.post(f"{emu.base_url}/oauth2/authorize", data={"request_id": rid, "account_id": account_id}, allow_redirects=False)
    assert consent.status_code == 200
    assert 'value="allow"' in consent.text and 'value="deny"' in consent.text
    final = b.post(
        f"{emu.base_url}/oauth2/authorize",
        data={"request_id": rid, "account_id": account_id, "decision": decision},
        allow_redirects=False,
    )
    assert final.status_code == 302
    loc = final.headers["Location"]
    assert loc.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlparse(loc).query).items()}


def test_code_flow_via_consent_page(emu):
    acct = emu.account()
    flow = _flow(emu)
    url = flow.start(url_state="abc")
    params = _consent(emu, url, acct["account_id"])
    result = flow.finish(params)
    assert result.account_id == acct["account_id"]
    assert result.url_state == "abc"
    assert result.refresh_token
    assert result.expires_at is not None
    dbx = emu.client(result.access_token)
    me = dbx.users_get_current_account()
    assert me.account_id == acct["account_id"]
    assert me.email == "ada@example.com"
    assert me.root_info.root_namespace_id == acct["root_namespace_id"]
    # Codes are single-use.
    with pytest.raises(Exception):
        flow.finish(params)


def test_deny_redirects_with_access_denied(emu):
    acct = emu.account()
    flow = _flow(emu)
    url = flow.start()
    params = _consent(emu, url, acct["account_id"], decision="deny")
    assert params["error"] == "access_denied"
    with pytest.raises(oauth.NotApprovedException):
        flow.finish(params)


def test_sign_in_by_email_creates_account(emu):
    flow = _flow(emu)
    url = flow.start()
    b = _browser(emu)
    page = b.get(url)
    assert '<label for="email">' in page.text
    rid = _hidden(page.text, "request_id")
    consent = b.post(f"{emu.base_url}/oauth2/authorize", data={"request_id": rid, "email": "new@example.com"})
    aid = _hidden(consent.text, "account_id")
    final = b.post(
        f"{emu.base_url}/oauth2/authorize",
        data={"request_id": rid, "account_id": aid, "decision": "allow"},
        allow_redirects=False,
    )
    params = {k: v[0] for k, v in parse_qs(urlparse(final.headers["Location"]).query).items()}
    result = flow.finish(params)
    assert emu.client(result.access_token).users_get_current_account().email == "new@example.com"


def test_pkce_flow_and_refresh_without_secret(emu):
    acct = emu.account()
    flow = _flow(emu, use_pkce=True, secret=False)
    url = flow.start()
    assert "code_challenge_method=S256" in url
    approved = emu.admin("oauth/approve", {"account_id": acct["account_id"], "authorize_url": url})
    params = {k: v[0] for k, v in parse_qs(urlparse(approved["redirect_to"]).query).items()}
    result = flow.finish(params)
    assert result.refresh_token
    # Refresh with app key only (PKCE): the SDK refreshes before the first call.
    dbx = dropbox.Dropbox(
        oauth2_refresh_token=result.refresh_token,
        app_key=APP_KEY,
        session=emu.session(),
    )
    assert dbx.users_get_current_account().account_id == acct["account_id"]
    assert dbx._oauth2_access_token and dbx._oauth2_access_token != result.access_token


def test_invalid_redirect_uri_is_rejected_without_redirect(emu):
    b = _browser(emu)
    resp = b.get(
        f"{emu.base_url}/oauth2/authorize",
        params={"client_id": APP_KEY, "response_type": "code", "redirect_uri": "https://evil.example/cb"},
        allow_redirects=False,
    )
    assert resp.status_code == 400
    assert "redirect_uri" in resp.text
    resp = b.get(f"{emu.base_url}/oauth2/authorize", params={"client_id": "nope", "response_type": "code"})
    assert resp.status_code == 400


def test_expired_token_is_refreshed_by_the_sdk(emu):
    acct = emu.account()
    tok = emu.token(acct["account_id"], offline=True)
    dbx = dropbox.Dropbox(
        oauth2_access_token=tok["access_token"],
        oauth2_refresh_token=tok["refresh_token"],
        oauth2_access_token_expiration=None,
        app_key=APP_KEY,
        app_secret=APP_SECRET,
        session=emu.session(),
    )
    emu.admin("tokens/expire", {"access_token": tok["access_token"]})
    # Without refresh ability the SDK surfaces expired_access_token.
    plain = emu.client(tok["access_token"])
    with pytest.raises(AuthError) as e:
        plain.users_get_current_account()
    assert e.value.error.is_expired_access_token()
    # With a refresh token it refreshes once and retries.
    assert dbx.users_get_current_account().account_id == acct["account_id"]
    assert dbx._oauth2_access_token != tok["access_token"]


def test_revoke_kills_refresh_token_and_minted_tokens(emu):
    acct = emu.account()
    tok = emu.token(acct["account_id"], offline=True)
    dbx = dropbox.Dropbox(
        oauth2_refresh_token=tok["refresh_token"], app_key=APP_KEY, app_secret=APP_SECRET, session=emu.session()
    )
    dbx.users_get_current_account()
    minted = dbx._oauth2_access_token
    emu.client(tok["access_token"]).auth_token_revoke()
    with pytest.raises(AuthError) as e:
        emu.client(minted).users_get_current_account()
    assert e.value.error.is_invalid_access_token()
    fresh = dropbox.Dropbox(
        oauth2_refresh_token=tok["refresh_token"], app_key=APP_KEY, app_secret=APP_SECRET, session=emu.session()
    )
    with pytest.raises(AuthError):
        fresh.users_get_current_account()


def test_invalid_token_is_401(emu):
    with pytest.raises(AuthError) as e:
        emu.client("sl.u.not-a-real-token").users_get_current_account()
    assert e.value.error.is_invalid_access_token()


def test_access_tokens_expire_after_configured_lifetime(emu):
    acct = emu.account()
    tok = emu.token(acct["account_id"], expires_in=1)
    assert tok["expires_in"] == 1
    time.sleep(2.1)
    with pytest.raises(AuthError) as e:
        emu.client(tok["access_token"]).users_get_current_account()
    assert e.value.error.is_expired_access_token()


def test_no_redirect_flow_shows_code(emu):
    acct = emu.account()
    flow = oauth.DropboxOAuth2FlowNoRedirect(
        APP_KEY, consumer_secret=APP_SECRET, token_access_type="offline", ca_certs=emu.pem
    )
    flow.requests_session.trust_env = False
    url = flow.start()
    b = _browser(emu)
    rid = _hidden(b.get(url).text, "request_id")
    page = b.post(
        f"{emu.base_url}/oauth2/authorize",
        data={"request_id": rid, "account_id": acct["account_id"], "decision": "allow"},
    )
    code = re.search(r'<code id="code">([^<]+)</code>', page.text).group(1)
    result = flow.finish(code)
    assert result.account_id == acct["account_id"] and result.refresh_token
