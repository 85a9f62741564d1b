"""Skills: the plugin API, discovery (entry points, MCP) and the built-in skills."""
