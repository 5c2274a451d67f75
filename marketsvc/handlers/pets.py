"""Pets with their owners: admins only."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import pets
from marketsvc.handlers.examples import NEW_PET, PET, RELEASE
from marketsvc.schemas.common import PageQuery
from marketsvc.schemas.users import PetCreate, PetOut, PetPatch, dump_pet
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()


@routes.get("/api/v1/pets")
@endpoint(
    summary="Stream all pets with their owners",
    access=Access.ADMIN,
    tag="pets",
    query=PageQuery(),
    response=PetOut(),
    stream=True,
    response_example=PET,
)
async def list_pets(request: web.Request) -> web.StreamResponse:
    return await stream_list(request, pets.stream_pets, dump_all(dump_pet))


@routes.post("/api/v1/pets")
@endpoint(
    summary="Add a pet, with an owner or without",
    access=Access.ADMIN,
    tag="pets",
    body=PetCreate(),
    response=PetOut(),
    status=201,
    errors=(422,),
    request_example=NEW_PET,
    response_example=PET,
)
async def create_pet(request: web.Request) -> web.Response:
    data = await read_body(request)
    async with request.app[DATABASE].change() as session:
        pet = await pets.create_pet(session, data)
    return created(dump_pet(pet), f"/api/v1/pets/{pet.id}")


@routes.get(r"/api/v1/pets/{id}")
@endpoint(
    summary="One pet with its owner",
    access=Access.ADMIN,
    tag="pets",
    response=PetOut(),
    errors=(404,),
    response_example=PET,
)
async def get_pet(request: web.Request) -> web.Response:
    async with request.app[DATABASE].load() as session:
        pet = await pets.get_pet(session, path_id(request))
    return json_response(dump_pet(pet))


@routes.patch(r"/api/v1/pets/{id}")
@endpoint(
    summary="Rename a pet, hand it to another user, or release it (user_id null)",
    access=Access.ADMIN,
    tag="pets",
    body=PetPatch(),
    response=PetOut(),
    errors=(404, 422),
    request_example=RELEASE,
    response_example=PET | {"user": None},
)
async def update_pet(request: web.Request) -> web.Response:
    pet_id = path_id(request)
    changes = await read_body(request)
    async with request.app[DATABASE].change() as session:
        pet = await pets.update_pet(session, pet_id, changes)
    return json_response(dump_pet(pet))


@routes.delete(r"/api/v1/pets/{id}")
@endpoint(summary="Delete a pet", access=Access.ADMIN, tag="pets", status=204, errors=(404,))
async def delete_pet(request: web.Request) -> web.Response:
    pet_id = path_id(request)
    async with request.app[DATABASE].change() as session:
        await pets.delete_pet(session, pet_id)
    return web.Response(status=204)
