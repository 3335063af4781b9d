"""The self-service catalog: products, portfolios, provisioned products (launch, update, terminate)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.catalog.models import Portfolio, Product, ProvisionedProduct
from strongroom.core.context import RequestContext
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["catalog"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class Launch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: str = Field(max_length=64)
    version: str | None = Field(default=None, max_length=64)
    parameters: dict[str, str | int | float] = Field(default_factory=dict)


class Update(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(default=None, max_length=64)
    parameters: dict[str, str | int | float] = Field(default_factory=dict)


class CreatePortfolio(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=1024)
    products: list[str] = Field(default_factory=list)
    grants: list[str] = Field(default_factory=list)


class ProductRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: str = Field(max_length=64)


class RoleRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(max_length=32)


def absolute(request: Request, product: ProvisionedProduct) -> ProvisionedProduct:
    """Outputs that are platform paths (``...Url``) become absolute URLs of this server."""
    base = str(request.base_url).rstrip("/")
    outputs: dict[str, Any] = {
        k: (base + v if k.endswith("Url") and v.startswith("/") else v) for k, v in product.outputs.items()
    }
    return product.model_copy(update={"outputs": outputs})


@router.get("/catalog/products")
def list_products(ctx: Ctx, p: P) -> Page[Product]:
    return Page[Product](items=p.catalog.list_products(ctx))


@router.get("/catalog/products/{product}")
def describe_product(product: str, ctx: Ctx, p: P) -> Product:
    return p.catalog.describe_product(ctx, product)


@router.post("/catalog/provisioned-products", status_code=202)
def launch(body: Launch, request: Request, ctx: Ctx, p: P) -> ProvisionedProduct:
    return absolute(request, p.catalog.launch(ctx, body.product, body.parameters, version=body.version))


@router.get("/teams/{team}/provisioned-products")
def list_provisioned(
    team: str, request: Request, ctx: Ctx, p: P, include_terminated: bool = False
) -> Page[ProvisionedProduct]:
    items = p.catalog.list(ctx, team, include_terminated=include_terminated)
    return Page[ProvisionedProduct](items=[absolute(request, i) for i in items])


@router.get("/teams/{team}/provisioned-products/{name}")
def describe_provisioned(team: str, name: str, request: Request, ctx: Ctx, p: P) -> ProvisionedProduct:
    return absolute(request, p.catalog.describe(ctx, team, name))


@router.patch("/teams/{team}/provisioned-products/{name}", status_code=202)
def update_provisioned(team: str, name: str, body: Update, request: Request, ctx: Ctx, p: P) -> ProvisionedProduct:
    return absolute(request, p.catalog.update(ctx, team, name, body.parameters, version=body.version))


@router.delete("/teams/{team}/provisioned-products/{name}", status_code=202)
def terminate_provisioned(team: str, name: str, request: Request, ctx: Ctx, p: P) -> ProvisionedProduct:
    return absolute(request, p.catalog.terminate(ctx, team, name))


@router.get("/teams/{team}/portfolios")
def list_portfolios(team: str, ctx: Ctx, p: P) -> Page[Portfolio]:
    return Page[Portfolio](items=p.catalog.list_portfolios(ctx, team))


@router.post("/teams/{team}/portfolios", status_code=201)
def create_portfolio(team: str, body: CreatePortfolio, ctx: Ctx, p: P) -> Portfolio:
    return p.catalog.create_portfolio(ctx, team, body.name, body.description, body.products, body.grants)


@router.delete("/teams/{team}/portfolios/{name}", status_code=204)
def delete_portfolio(team: str, name: str, ctx: Ctx, p: P) -> Response:
    p.catalog.delete_portfolio(ctx, team, name)
    return Response(status_code=204)


@router.post("/teams/{team}/portfolios/{name}/products")
def associate_product(team: str, name: str, body: ProductRef, ctx: Ctx, p: P) -> Portfolio:
    return p.catalog.associate_product(ctx, team, name, body.product)


@router.delete("/teams/{team}/portfolios/{name}/products/{product}")
def disassociate_product(team: str, name: str, product: str, ctx: Ctx, p: P) -> Portfolio:
    return p.catalog.disassociate_product(ctx, team, name, product)


@router.post("/teams/{team}/portfolios/{name}/grants")
def grant_access(team: str, name: str, body: RoleRef, ctx: Ctx, p: P) -> Portfolio:
    return p.catalog.grant_access(ctx, team, name, body.role)


@router.delete("/teams/{team}/portfolios/{name}/grants/{role}")
def revoke_access(team: str, name: str, role: str, ctx: Ctx, p: P) -> Portfolio:
    return p.catalog.revoke_access(ctx, team, name, role)
