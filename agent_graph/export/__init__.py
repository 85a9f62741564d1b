"""The task history as data: fine-tuning sets (SFT chat records, ORPO preference pairs) for the
specialised agents, and plain exports for people. Secrets are removed and e-mail addresses
masked on the way out; near-duplicate prompts are kept once."""
