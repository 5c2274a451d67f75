"""Users with their pets: admins only."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import pets, users
from marketsvc.handlers.examples import NEW_USER, PET, PET_NAME, RENAME, USER
from marketsvc.schemas.common import PageQuery
from marketsvc.schemas.users import (
    NameBody,
    PetOut,
    UserCreate,
    UserOut,
    UserPatch,
    dump_pet,
    dump_user,
)
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()


@routes.get("/api/v1/users")
@endpoint(
    summary="Stream all users with their pets",
    access=Access.ADMIN,
    tag="users",
    query=PageQuery(),
    response=UserOut(),
    stream=True,
    response_example=USER,
)
async def list_users(request: web.Request) -> web.StreamResponse:
    return await stream_list(request, users.stream_users, dump_all(dump_user))


@routes.post("/api/v1/users")
@endpoint(
    summary="Add a user, optionally with new pets",
    access=Access.ADMIN,
    tag="users",
    body=UserCreate(),
    response=UserOut(),
    status=201,
    request_example=NEW_USER,
    response_example=USER,
)
async def create_user(request: web.Request) -> web.Response:
    data = await read_body(request)
    async with request.app[DATABASE].change() as session:
        user = await users.create_user(session, data)
    return created(dump_user(user), f"/api/v1/users/{user.id}")


@routes.get(r"/api/v1/users/{id}")
@endpoint(
    summary="One user with its pets",
    access=Access.ADMIN,
    tag="users",
    response=UserOut(),
    errors=(404,),
    response_example=USER,
)
async def get_user(request: web.Request) -> web.Response:
    async with request.app[DATABASE].load() as session:
        user = await users.get_user(session, path_id(request))
    return json_response(dump_user(user))


@routes.patch(r"/api/v1/users/{id}")
@endpoint(
    summary="Rename a user",
    access=Access.ADMIN,
    tag="users",
    body=UserPatch(),
    response=UserOut(),
    errors=(404,),
    request_example=RENAME,
    response_example=USER | {"name": "Ida"},
)
async def update_user(request: web.Request) -> web.Response:
    user_id = path_id(request)
    changes = await read_body(request)
    async with request.app[DATABASE].change() as session:
        user = await users.update_user(session, user_id, changes)
    return json_response(dump_user(user))


@routes.delete(r"/api/v1/users/{id}")
@endpoint(
    summary="Delete a user; its pets stay, without an owner",
    access=Access.ADMIN,
    tag="users",
    status=204,
    errors=(404,),
)
async def delete_user(request: web.Request) -> web.Response:
    user_id = path_id(request)
    async with request.app[DATABASE].change() as session:
        await users.delete_user(session, user_id)
    return web.Response(status=204)


@routes.get(r"/api/v1/users/{id}/pets")
@endpoint(
    summary="Stream one user's pets",
    access=Access.ADMIN,
    tag="users",
    query=PageQuery(),
    response=PetOut(),
    stream=True,
    errors=(404,),
    response_example=PET,
)
async def list_user_pets(request: web.Request) -> web.StreamResponse:
    return await stream_list(
        request,
        pets.stream_pets,
        dump_all(dump_pet),
        user_id=path_id(request),
    )


@routes.post(r"/api/v1/users/{id}/pets")
@endpoint(
    summary="Add a pet owned by this user",
    access=Access.ADMIN,
    tag="users",
    body=NameBody(),
    response=PetOut(),
    status=201,
    errors=(404,),
    request_example=PET_NAME,
    response_example=PET,
)
async def add_user_pet(request: web.Request) -> web.Response:
    user_id = path_id(request)
    data = await read_body(request)
    async with request.app[DATABASE].change() as session:
        pet = await pets.add_pet_to_user(session, user_id, data)
    return created(dump_pet(pet), f"/api/v1/pets/{pet.id}")
