"""The binary seeded from a local folder with --watch: files dropped into the folder show
up through the SDK (cursor + longpoll). Uses a second emulator process."""

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import dropbox
from dropbox import files

from conftest import REPO_ROOT


def test_seeded_folder_is_watched(tmp_path):
    seed = tmp_path / "seed"
    (seed / "Docs").mkdir(parents=True)
    (seed / "Docs" / "hello.txt").write_bytes(b"hello")
    pem = tmp_path / "seed.pem"
    binary = os.environ.get("DROPBOX_EMULATOR_BIN", str(REPO_ROOT / "target" / "debug" / "dropbox-emulator"))
    proc = subprocess.Popen(
        [
            binary, "--listen", "127.0.0.1:0", "--tls", "--tls-cert-out", str(pem),
            "--seed-dir", str(seed), "--seed-email", "seed@example.com", "--watch",
            "--app-key", "seed-app", "--app-secret", "seed-secret",
            "--redirect-uri", "http://localhost:1/cb", "--redirect-uri", "http://localhost:2/cb",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("dropbox-emulator listening on https://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        hostport = base.split("://", 1)[1]
        s = dropbox.create_session(ca_certs=str(pem))
        s.trust_env = False
        acct = s.post(f"{base}/__admin/accounts", json={"email": "seed@example.com"}).json()
        tok = s.post(f"{base}/__admin/tokens", json={"app_key": "seed-app", "account_id": acct["account_id"]}).json()
        dbx = dropbox.Dropbox(oauth2_access_token=tok["access_token"], session=s, max_retries_on_error=0)
        # This second emulator listens on another port than the one in the env vars.
        dbx._host_map = {k: hostport for k in dbx._host_map}
        res = dbx.files_list_folder("", recursive=True)
        assert [e.path_display for e in res.entries] == ["/Docs", "/Docs/hello.txt"]
        out = {}

        def poll():
            out["r"] = dbx.files_list_folder_longpoll(res.cursor, timeout=30)

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.3)
        (seed / "Docs" / "dropped.md").write_bytes(b"# dropped")
        t.join(15)
        assert out["r"].changes
        entries = []
        for _ in range(30):
            entries = dbx.files_list_folder_continue(res.cursor).entries
            if entries:
                break
            time.sleep(0.2)
        assert [(type(e), e.path_display) for e in entries] == [(files.FileMetadata, "/Docs/dropped.md")]
        meta, resp = dbx.files_download("/Docs/dropped.md")
        assert resp.content == b"# dropped"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
