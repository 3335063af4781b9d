"""SDK clients for the catalog (``session.catalog``) and notebooks (``session.notebooks``)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.catalog.models import Portfolio, Product, ProvisionedProduct
from strongroom.core.errors import StrongroomError, Unavailable
from strongroom.notebooks.models import Notebook, PresignedUrl
from strongroom.sdk.paths import q
from strongroom.sdk.resources import _Client

Progress = Callable[[ProvisionedProduct], None]


class Catalog(_Client):
    """Products, portfolios and provisioned products."""

    def products(self) -> builtins.list[Product]:
        return self._pages("/api/v1/catalog/products", Product)

    def product(self, name: str) -> Product:
        return self._s.call("GET", f"/api/v1/catalog/products/{q(name)}", Product)

    def launch(
        self,
        product: str,
        parameters: Mapping[str, str | int | float],
        *,
        version: str | None = None,
        wait: bool = False,
        timeout: float = 600.0,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> ProvisionedProduct:
        """Launch ``product``; with ``wait``, return once it settles (AVAILABLE, or raise on ERROR)."""
        body = {"product": product, "version": version, "parameters": dict(parameters)}
        launched: ProvisionedProduct = self._s.call(
            "POST",
            "/api/v1/catalog/provisioned-products",
            ProvisionedProduct,
            json_body=body,
            idempotency_key=idempotency_key,
        )
        return self.wait(launched.team, launched.name, timeout=timeout, progress=progress) if wait else launched

    def describe(self, team: str, name: str) -> ProvisionedProduct:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/provisioned-products/{q(name)}", ProvisionedProduct)

    def list(self, team: str, include_terminated: bool = False) -> builtins.list[ProvisionedProduct]:
        return self._pages(
            f"/api/v1/teams/{q(team)}/provisioned-products",
            ProvisionedProduct,
            {"include_terminated": str(include_terminated).lower()},
        )

    def update(
        self,
        team: str,
        name: str,
        parameters: Mapping[str, str | int | float] | None = None,
        *,
        version: str | None = None,
        wait: bool = False,
        timeout: float = 600.0,
        progress: Progress | None = None,
    ) -> ProvisionedProduct:
        body = {"parameters": dict(parameters or {}), "version": version}
        self._s.call(
            "PATCH", f"/api/v1/teams/{q(team)}/provisioned-products/{q(name)}", ProvisionedProduct, json_body=body
        )
        return (
            self.wait(team, name, timeout=timeout, progress=progress, accept_tainted=True)
            if wait
            else self.describe(team, name)
        )

    def terminate(
        self, team: str, name: str, *, wait: bool = False, timeout: float = 600.0, progress: Progress | None = None
    ) -> ProvisionedProduct:
        self._s.call("DELETE", f"/api/v1/teams/{q(team)}/provisioned-products/{q(name)}", ProvisionedProduct)
        return self.wait(team, name, timeout=timeout, progress=progress) if wait else self.describe(team, name)

    def wait(
        self,
        team: str,
        name: str,
        *,
        timeout: float = 600.0,
        progress: Progress | None = None,
        accept_tainted: bool = False,
    ) -> ProvisionedProduct:
        """Poll until the product is no longer UNDER_CHANGE.

        Raises:
            StrongroomError: it ended in ERROR (or TAINTED, unless ``accept_tainted``), with its message.
            Unavailable: ``timeout`` passed first.
        """
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            current = self.describe(team, name)
            if progress is not None:
                progress(current)
            if current.settled:
                if current.status == "ERROR" or (current.status == "TAINTED" and not accept_tainted):
                    raise StrongroomError(f"{team}/{name} is {current.status}: {current.status_message}")
                return current
            if time.monotonic() > deadline:
                raise Unavailable(f"{team}/{name} is still {current.status} after {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def portfolios(self, team: str) -> builtins.list[Portfolio]:
        return self._pages(f"/api/v1/teams/{q(team)}/portfolios", Portfolio)

    def create_portfolio(
        self,
        team: str,
        name: str,
        *,
        products: builtins.list[str] | None = None,
        grants: builtins.list[str] | None = None,
        description: str = "",
    ) -> Portfolio:
        body = {"name": name, "description": description, "products": products or [], "grants": grants or []}
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/portfolios", Portfolio, json_body=body)

    def grant(self, team: str, portfolio: str, role: str) -> Portfolio:
        return self._s.call(
            "POST", f"/api/v1/teams/{q(team)}/portfolios/{q(portfolio)}/grants", Portfolio, json_body={"role": role}
        )

    def revoke(self, team: str, portfolio: str, role: str) -> Portfolio:
        return self._s.call("DELETE", f"/api/v1/teams/{q(team)}/portfolios/{q(portfolio)}/grants/{q(role)}", Portfolio)


class Notebooks(_Client):
    """Notebook instances; ``kernel``/``run``/``execute_notebook`` talk to Jupyter through the proxy."""

    def list(self, team: str) -> builtins.list[Notebook]:
        return self._pages(f"/api/v1/teams/{q(team)}/notebooks", Notebook)

    def describe(self, team: str, name: str) -> Notebook:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/notebooks/{q(name)}", Notebook)

    def start(self, team: str, name: str, *, wait: bool = False, timeout: float = 300.0) -> Notebook:
        self._s.call("POST", f"/api/v1/teams/{q(team)}/notebooks/{q(name)}/start", Notebook)
        return self.wait(team, name, "InService", timeout) if wait else self.describe(team, name)

    def stop(self, team: str, name: str, *, wait: bool = False, timeout: float = 120.0) -> Notebook:
        self._s.call("POST", f"/api/v1/teams/{q(team)}/notebooks/{q(name)}/stop", Notebook)
        return self.wait(team, name, "Stopped", timeout) if wait else self.describe(team, name)

    def wait(self, team: str, name: str, status: str, timeout: float = 300.0) -> Notebook:
        """Poll until the notebook reaches ``status``; raise with its reason if it Failed."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.describe(team, name)
            if current.status == status:
                return current
            if current.status == "Failed" and status != "Failed":
                raise StrongroomError(f"notebook {team}/{name} failed: {current.reason}")
            if time.monotonic() > deadline:
                raise Unavailable(f"notebook {team}/{name} is still {current.status} after {timeout:g} s")
            time.sleep(0.2)

    def presigned_url(self, team: str, name: str, expires_in: int = 300) -> PresignedUrl:
        """A single-use URL that signs a browser in (``strongroom notebooks open``)."""
        return self._s.call(
            "POST",
            f"/api/v1/teams/{q(team)}/notebooks/{q(name)}/presigned-url",
            PresignedUrl,
            json_body={"expires_in": expires_in},
        )

    def kernel(self, team: str, name: str, kernel_name: str = "python3") -> Any:
        """A kernel started in the notebook, driven over REST + WebSocket through the proxy."""
        from strongroom.sdk.notebooks import RemoteKernel

        return RemoteKernel.start(self._s, team, name, kernel_name)

    def run(self, team: str, name: str, code: str, timeout: float = 120.0) -> Any:
        """Run ``code`` in a fresh kernel of the notebook; return its result (outputs, error)."""
        with self.kernel(team, name) as kernel:
            return kernel.execute(code, timeout=timeout)

    def upload(self, team: str, name: str, path: str, content: Any) -> None:
        """Write a notebook (nbformat/dict), text or bytes into the running notebook's home at ``path``."""
        from strongroom.sdk.notebooks import upload

        upload(self._s, team, name, path, content)

    def download(self, team: str, name: str, path: str) -> Any:
        """The notebook file at ``path`` in the running notebook's home, as nbformat."""
        from strongroom.sdk.notebooks import download

        return download(self._s, team, name, path)

    def execute_notebook(self, team: str, name: str, path: str, **options: Any) -> Any:
        """Execute the notebook file at ``path`` (relative to the notebook's home) in a kernel of the
        running notebook; return the executed ``nbformat`` notebook (see ``sdk.notebooks.execute_notebook``)."""
        from strongroom.sdk.notebooks import execute_notebook

        return execute_notebook(self._s, team, name, path, **options)
