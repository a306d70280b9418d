#!/usr/bin/env python3
"""The `make demo` walkthrough, written against the official Carbon SDK (carbon-python-sdk 0.2.56)
exactly as an application would use it, plus a browser-like walk through the Dropbox emulator's
consent page. Started by scripts/demo.sh, which runs both servers."""
import argparse
import os
import re
import shutil
import sys
import time

import requests
from carbon import Carbon

CUSTOMER = "demo-user"
EMAIL = "demo@northwind.example"


def say(msg=""):
    print(msg, flush=True)


def get(obj, key, default=None):
    """Field of an SDK response (attribute or mapping)."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def consent(oauth_url, emulator):
    """Does what the user does in the browser: pick the account, click Allow."""
    s = requests.Session()
    page = s.get(oauth_url, timeout=30)
    page.raise_for_status()
    rid = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
    m = re.search(r'name="account_id" value="([^"]+)">Continue as [^<]*<span>\(' + re.escape(EMAIL), page.text)
    form = {"request_id": rid}
    if m:
        form["account_id"] = m.group(1)
    else:
        form.update({"email": EMAIL, "action": "signin"})
    page = s.post(f"{emulator}/oauth2/authorize", data=form, timeout=30)
    page.raise_for_status()
    aid = re.search(r'name="account_id" value="([^"]+)"', page.text).group(1)
    resp = s.post(f"{emulator}/oauth2/authorize",
                  data={"request_id": rid, "account_id": aid, "decision": "allow"},
                  allow_redirects=False, timeout=30)
    back = resp.headers["location"]
    landing = s.get(back, timeout=60)
    if landing.status_code != 200:
        sys.exit(f"carbide's OAuth callback answered {landing.status_code}: {landing.text[:300]}")


def wait(what, check, timeout=600, every=1.0):
    t0 = time.time()
    while True:
        done = check()
        if done:
            return done
        if time.time() - t0 > timeout:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(every)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--carbide", required=True)
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--dropbox-dir", required=True)
    ap.add_argument("--later", required=True)
    a = ap.parse_args()

    say("1. The application's backend mints an access token for its customer")
    backend = Carbon(host=a.carbide, api_key=a.api_key, customer_id=CUSTOMER)
    token = backend.auth.get_access_token().access_token
    carbon = Carbon(host=a.carbide, access_token=token)
    say(f"   customer {CUSTOMER!r} has a 10-hour token")

    say("2. The customer connects Dropbox (OAuth 2.0 consent on the Dropbox emulator)")
    url = carbon.integrations.get_oauth_url(service="DROPBOX").oauth_url
    consent(url, a.emulator)
    sources = carbon.data_sources.query_user_data_sources().results
    ds = sources[0]
    say(f"   connected data source {ds.id} ({ds.data_source_external_id}), status {ds.sync_status}")

    say("3. carbide lists the account so the customer can pick files and folders")
    carbon.integrations.sync_data_source_items(data_source_id=ds.id)

    def listed():
        r = carbon.data_sources.query_user_data_sources(filters={"ids": [ds.id]}).results[0]
        return r if get(r, "source_items_synced_at") and get(r, "sync_status") == "READY" else None
    wait("the item listing", listed)
    root = carbon.integrations.list_data_source_items(data_source_id=ds.id).items
    for it in root:
        say(f"   {'[folder]' if get(it, 'item_type') == 'FOLDER' else '       '} {it.name}")
    folders = [it.external_id for it in root if get(it, "item_type") == "FOLDER"]

    say(f"4. The customer chooses {len(folders)} folders; carbide syncs every supported file in them")
    t0 = time.time()
    carbon.integrations.sync_files(data_source_id=ds.id, ids=folders)

    expected = sum(1 for _, _, fs in os.walk(a.dropbox_dir) for _ in fs)
    last = {"line": None}

    def progress():
        files = [f for f in carbon.files.query_user_files(pagination={"limit": 200}).results
                 if not (get(f, "file_metadata") or {}).get("is_folder")]
        states = {}
        for f in files:
            states[f.sync_status] = states.get(f.sync_status, 0) + 1
        line = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "listing folders"
        if line != last["line"]:
            say(f"   {time.time() - t0:5.1f} s  {line}")
            last["line"] = line
        busy = any(f.sync_status not in ("READY", "SYNC_ERROR") for f in files)
        return files if len(files) >= expected and not busy else None
    files = wait("every file to be processed", progress, every=2.0)
    for f in files:
        extra = f"  ({f.sync_error_message})" if f.sync_status == "SYNC_ERROR" else ""
        say(f"   {f.sync_status:10} {f.name}{extra}")

    say("5. The application searches (hybrid: keyword + semantic)")
    names = {f.id: f.name for f in files}
    for q in ["How much can I spend on a hotel in London?",
              "What caused the search outage in July?",
              "Which region grew fastest for Northwind Search?",
              "When does offline review ship?"]:
        docs = carbon.embeddings.get_documents(query=q, k=2, hybrid_search=True).documents
        say(f"   Q: {q}")
        for d in docs:
            text = " ".join(d.content.split())[:110]
            say(f"      {d.score:.3f}  {names.get(d.file_id, d.file_id)}: {text}")

    say("6. A new file appears in a chosen Dropbox folder; nobody calls the API")
    target = os.path.join(a.dropbox_dir, "handbook", os.path.basename(a.later))
    t0 = time.time()
    shutil.copy(a.later, target)

    def found():
        docs = carbon.embeddings.get_documents(query="parental leave weeks", k=3).documents
        return any("20 weeks" in d.content for d in docs)
    wait("the new file to become searchable", found, timeout=120, every=0.5)
    say(f"   searchable {time.time() - t0:.1f} s after it was written to the Dropbox folder")


if __name__ == "__main__":
    main()
