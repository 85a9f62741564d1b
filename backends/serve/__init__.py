"""`myninja serve`: an OpenAI-compatible HTTP server over any engine that speaks our Backend
protocol (llama.cpp now; Neuron engines plug in the same way)."""
