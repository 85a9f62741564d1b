"""The agent runtime: task state, events, personas, and (soon) the LangGraph state machine."""
