"""``poam-sync serve``: the admin workbench on its own (docs/workbench.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from poam_sync.cli._app import app, err, esc, guarded, state, store_url
from poam_sync.errors import ConfigError, PoamSyncError

SECRET_ENV = "POAM_SYNC_WEB_SECRET"


def _policies() -> dict[str, str]:
    """Each field's policy as the conflicts page shows it, from the configuration when it can
    be read (the defaults otherwise: a workbench needs no connector settings)."""
    from poam_sync.config import PolicyConfig, config_path, load_config

    policy = PolicyConfig()
    path = config_path(state.config)
    if path.exists():
        try:
            policy = load_config(path).policy
        except PoamSyncError as exc:
            err.print(f"[yellow]note:[/] field policies shown as the defaults: {esc(exc.message)}")
    shown = {}
    for name, rule in policy.fields.items():
        shown[name] = f"authority: {rule.owner}" if rule.mode == "authority" else rule.mode
    return shown


@app.command("serve")
def serve_cmd(
    http: Annotated[
        str,
        typer.Option("--http", metavar="HOST:PORT", help="Where to serve the workbench."),
    ] = "127.0.0.1:8080",
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM).")
    ] = None,
    trust_user_header: Annotated[
        str | None,
        typer.Option(
            "--trust-user-header",
            metavar="HEADER",
            help="Sign in the account a reverse proxy names in HEADER (SSO); off by default. "
            "Only requests from --trusted-proxy addresses are believed.",
            show_default=False,
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            metavar="ADDRESS",
            help="A reverse proxy's address (repeatable): its X-Forwarded-For, "
            "X-Forwarded-Proto and --trust-user-header are believed.",
        ),
    ] = None,
) -> None:
    """Serve the admin workbench: dashboard, items, conflicts to settle, problems.

    Accounts come from `poam-sync users add`. Sessions are signed with POAM_SYNC_WEB_SECRET
    (a random secret per start when unset: a restart then signs everyone out)."""
    import uvicorn
    from pydantic import SecretStr

    from poam_sync.health import parse_listen
    from poam_sync.store import Store
    from poam_sync.web import WebSettings, create_app

    def body() -> None:
        host, port = parse_listen(http)
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together", hint="give both or neither")
        if trust_user_header and not trusted_proxy:
            raise ConfigError(
                "--trust-user-header needs the proxy's address",
                hint="add --trusted-proxy ADDRESS (the reverse proxy that sets the header)",
            )
        url = store_url()
        secret = os.environ.get(SECRET_ENV)
        settings = WebSettings(
            secret=SecretStr(secret) if secret else None,
            trusted_user_header=trust_user_header,
            trusted_proxies=tuple(trusted_proxy or ()),
            policies=_policies(),
        )
        store = Store.open(url)
        try:
            with store.read() as tx:
                accounts = [u for u in tx.users() if not u.disabled]
            scheme = "https" if tls_cert else "http"
            shown_host = f"[{host}]" if ":" in host else host
            err.print(f"workbench at {scheme}://{shown_host}:{port}/ (Ctrl-C stops it)")
            if not accounts:
                err.print(
                    "[yellow]no account can sign in yet:[/] add one with "
                    "`poam-sync users add NAME --role admin`"
                )
            config = uvicorn.Config(
                create_app(store, settings),
                host=host,
                port=port,
                log_level="warning",
                ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None,
                # the workbench reads the forwarded headers itself, from trusted proxies only
                proxy_headers=False,
            )
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                raise ConfigError(
                    f"cannot serve the workbench on {host}:{port}",
                    hint="is the port in use? choose another with --http HOST:PORT",
                )
        finally:
            store.close()

    guarded(body)
