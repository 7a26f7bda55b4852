"""The assessor's bundle: one zip with the POA&M, its change log and the proof that it holds.

``poam-sync audit bundle -o FILE.zip`` writes::

    poam/fedramp-poam.xlsx      the POA&M as a FedRAMP workbook (the `export` command's)
    poam/oscal-poam.json        and as OSCAL POA&M JSON
    log/change-log.jsonl        the change log with its hash fields (audit_export), up to the
                                row that was verified
    checkpoint/<name>.json      the latest signed checkpoint, when one is given
    verify.json, verify.txt     what verifying the chain (and the checkpoint) found
    MANIFEST.sha256             the sha256 of every file above, in ``sha256sum`` form

After unzipping, ``sha256sum -c MANIFEST.sha256`` checks the files; the JSON Lines file
recomputes every row's hash (docs/store.md). The exported log stops at the head the verification
reached, so the two agree while a sync appends; a bundle is written beside its place and renamed
at the end. A broken chain is
reported in ``verify.json`` (``"ok": false``) and the bundle is still written: an assessor
needs to see that too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from poam_sync import __version__, formats
from poam_sync.audit_checkpoint import check_in, read_checkpoint
from poam_sync.audit_export import write_log
from poam_sync.store import LogQuery, Store

MANIFEST = "MANIFEST.sha256"


@dataclass(frozen=True, slots=True)
class BundleResult:
    path: Path
    items: int
    rows: int
    ok: bool  # the chain verifies (and holds the checkpoint, when one was given)
    message: str
    files: tuple[str, ...]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_bundle(
    store: Store,
    output: Path,
    *,
    system: str | None = None,
    checkpoint: Path | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> BundleResult:
    """Write the bundle to ``output``; ``checkpoint`` (a file) is checked with ``public_key``."""
    signed = read_checkpoint(checkpoint) if checkpoint is not None else None
    with tempfile.TemporaryDirectory(prefix="poam-sync-bundle-") as tmp:
        folder = Path(tmp)
        for sub in ("poam", "log", "checkpoint"):
            (folder / sub).mkdir()
        with store.read() as tx:
            items = tx.items(system)
            chain = tx.verify_log()
            head = tx.chain_point() if chain.ok else None
            query = LogQuery(system=system)
            rows = write_log(
                tx,
                query,
                folder / "log" / "change-log.jsonl",
                "jsonl",
                up_to=head.seq if head is not None else None,
            )
            held = None
            if signed is not None and public_key is not None:
                held = check_in(tx, signed, public_key, chain)
        formats.write(
            items, folder / "poam" / "fedramp-poam.xlsx", format="fedramp-xlsx", system_name=system
        )
        formats.write(
            items, folder / "poam" / "oscal-poam.json", format="oscal-json", system_name=system
        )
        if checkpoint is not None:
            shutil.copyfile(checkpoint, folder / "checkpoint" / checkpoint.name)
        ok = chain.ok and (held is None or held.ok)
        message = (
            held.message
            if held is not None
            else (f"{chain.rows_checked} change-log row(s) verify" if chain.ok else chain.message)
        )
        if signed is None:
            message += "; no checkpoint was given (poam-sync audit bundle --checkpoint FILE)"
        report = {
            "ok": ok,
            "message": message,
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "poam_sync_version": __version__,
            "store": store.url,
            "system": system,
            "items": len(items),
            "chain": chain.to_json(),
            "head": head.to_json() if head is not None else None,
            "log_rows_exported": rows,
            "log_filter": {"system": system} if system else None,
            "checkpoint": None
            if signed is None
            else {
                "file": f"checkpoint/{checkpoint.name}" if checkpoint else None,
                **signed.checkpoint.model_dump(mode="json"),
                "held": None if held is None else held.ok,
                "message": None if held is None else held.message,
            },
        }
        (folder / "verify.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (folder / "verify.txt").write_text(
            f"{'ok' if ok else 'BROKEN'}: {message}\n", encoding="utf-8"
        )
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        (folder / MANIFEST).write_text(
            "".join(f"{_sha256(folder / name)}  {name}\n" for name in files), encoding="utf-8"
        )
        partial = output.with_name(f".{output.name}.partial")
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for name in [*files, MANIFEST]:
                    bundle.write(folder / name, name)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
    return BundleResult(
        path=output,
        items=len(items),
        rows=rows,
        ok=ok,
        message=message,
        files=(*files, MANIFEST),
    )
