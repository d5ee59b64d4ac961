"""Who may put sound on air, stop it or change it: one check below every route
(docs/security.md). `rules` is the pure table; `checks` applies it with the areas a
request touches."""

from authority.checks import authorise, authorise_aimed
from authority.rules import Deed, Refused, own_level

__all__ = ["Deed", "Refused", "authorise", "authorise_aimed", "own_level"]
