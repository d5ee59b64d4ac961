from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.actors import PEOPLE, Role
from core.schemas import CodeStr

USERNAME = r"^[a-z0-9][a-z0-9._-]{1,99}$"


def _a_person_s(role: Role) -> Role:
    if role not in PEOPLE:
        raise ValueError(f"{role.value} is the system's own role, not a person's")
    return role


PersonRole = Annotated[Role, AfterValidator(_a_person_s)]


class UserCreate(BaseModel):
    username: str = Field(pattern=USERNAME, description="lower case, digits, . _ -")
    full_name: str = Field(default="", max_length=200)
    password: str = Field(min_length=1, max_length=256)
    role: PersonRole
    area: CodeStr | None = Field(default=None, description="none: the whole province")


class UserUpdate(BaseModel):
    full_name: str | None = Field(default=None, max_length=200)
    role: PersonRole | None = None
    area: CodeStr | None = None
    password: str | None = Field(default=None, min_length=1, max_length=256)
    active: bool | None = None
    unlock: bool = Field(
        default=False, description="lift every hold on the name's sign-ins (all addresses)"
    )


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    full_name: str
    role: str
    area_code: str | None
    active: bool
    password_changed_at: datetime
    created_by: str
    created_at: datetime


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)


class LoginResult(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer …`; also set as a cookie")
    expires_at: datetime
    user: UserRead


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="what it is for")
    password: str = Field(
        min_length=1,
        max_length=256,
        description="one's password again: a session left open must not mint a token "
        "that outlives it",
    )
    days: int | None = Field(default=None, ge=1, le=366, description="at most API_TOKEN_TTL_DAYS")


class TokenCreated(BaseModel):
    token: str = Field(description="shown once: only its digest is kept")
    name: str
    expires_at: datetime


class PasswordChange(BaseModel):
    current: str = Field(min_length=1, max_length=256)
    new: str = Field(min_length=1, max_length=256)
