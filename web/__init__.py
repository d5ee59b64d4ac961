"""The request side shared by every domain's router: who is asking (`deps`) and whether
they may (`guard`). Typed against the narrow contexts the domains declare
(core/context.py and each domain's own), never against the application's runtime."""
