"""Skills: the plugin API, discovery (entry points, MCP) and the built-in skills.

A plugin imports what it needs from here: `from myninja.skills import Skill, tool`. The same
names live in `myninja.skills.api`, the contract's own module."""

from myninja.skills.api import *  # noqa: F403 - the contract is the package's public face
from myninja.skills.api import __all__ as __all__
