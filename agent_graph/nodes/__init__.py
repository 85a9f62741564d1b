"""The graph's nodes: plain async functions of (state, runtime), one phase each."""
