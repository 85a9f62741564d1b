"""`myninja acp`: myninja as an Agent Client Protocol agent over stdio (editors such as Zed).

agent    sessions and prompts over the task runtime (the background worker)
updates  one task's events as ACP session updates"""
