"""The coder skill: writes code into a per-task workspace and runs it, and the tests it wrote,
in a sandboxed subprocess (`myninja.skills.coder.sandbox`)."""
