"""The configuration's schema: backends, agents, the graph, keys, serve, notifications, research,
the app, MCP servers and skills, each key with its default and what it does.
Reading it (defaults, the TOML file, `MYNINJA_*` overrides) and writing it is config_file.py."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

# The agents' names, defined here once (the bottom layer, which every other can import): those
# a task can be given to, then the router and the judge, which serve the graph itself.
WorkerAgentName = Literal["assistant", "researcher", "coder", "advisor", "scheduler", "writer"]
AgentName = Literal[WorkerAgentName, "router", "judge"]
WORKER_AGENTS: tuple[str, ...] = get_args(WorkerAgentName)
AGENTS: tuple[str, ...] = get_args(AgentName)
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddedBackendConfig(_Strict):
    type: Literal["embedded"] = "embedded"
    model: str = Field(DEFAULT_MODEL, description="A named model or a path to a GGUF file")
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores")
    n_ctx: int = Field(4096, ge=256, description="Context window in tokens")
    seed: int = Field(0, description="Sampling seed, for repeatable runs")
    parallel: int = Field(
        4, ge=1, le=16, description="Requests decoded together in one batch; 1: one at a time"
    )
    prompt_cache: bool = Field(
        True, description="Start each request from the longest prompt prefix already evaluated"
    )
    lookup: int = Field(
        0, ge=0, le=32, description="Prompt-lookup draft tokens per step (greedy only); 0: off"
    )


def http_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host that httpx can request, else a ValueError
    that says why (a pasted URL may carry a control character or a port out of range)."""
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ValueError(f"invalid url {url!r}: it holds a space or a control character")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"invalid url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"url must start with http:// or https:// and name a host, got {url!r}")
    import httpx  # only where a URL is configured: the CLI starts without it

    try:
        httpx.URL(url)
        parts.port  # noqa: B018 - urlsplit checks the range only when asked
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"invalid url {url!r}: {exc}") from None
    return url


HttpUrl = Annotated[str, AfterValidator(http_url)]


def host_name(host: str) -> str:
    """`host` if it is a bare host name or IP address, else a ValueError: a URL or host:port in
    a list of hosts would never match one."""
    text = host.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
        return text
    except ValueError:
        pass
    if not text or any(char in text for char in ":/@?#[]") or not text.isprintable():
        raise ValueError(f"{host!r} is not a host name or address (write the host alone)")
    if any(char.isspace() for char in text):
        raise ValueError(f"{host!r} is not a host name or address: it holds a space")
    return text


HostName = Annotated[str, AfterValidator(host_name)]


class GatewayBackendConfig(_Strict):
    type: Literal["openai"] = "openai"
    url: HttpUrl = Field(description="Base URL of an OpenAI-compatible API, ending in /v1")
    model: str | None = Field(None, description="Model used when an agent names none")
    key_name: str | None = Field(None, description="Key store entry; default: the backend name")
    max_concurrency: int = Field(8, ge=1, description="Requests in flight at once")
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(120.0, gt=0, description="Longest silence between bytes")
    max_retries: int = Field(4, ge=0)
    json_mode: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="How constrained output is asked for; auto tries json_schema first"
    )


class ScriptedBackendConfig(_Strict):
    """Deterministic replies from a JSON script: for tests, demos and benchmarks."""

    type: Literal["scripted"] = "scripted"
    script: str = Field(description="Path to the JSON script")
    model: str | None = "scripted"


BackendConfig = Annotated[
    EmbeddedBackendConfig | GatewayBackendConfig | ScriptedBackendConfig,
    Field(discriminator="type"),
]


class GraphConfig(_Strict):
    """How the agent graph plans, branches and judges."""

    fast_path: bool = Field(
        True, description="Everyday tasks are answered in one call by the assistant agent"
    )
    escalate: bool = Field(
        True, description="A fast answer that fails a check goes on to a specialist agent"
    )
    compute: bool = Field(
        True,
        description="A calculation on the fast path is answered by Python the sandbox runs",
    )
    branches: int = Field(3, ge=1, le=8, description="Candidates per step; 1 turns branching off")
    adaptive: bool = Field(
        True, description="One branch first; the others only when it falls short of its checks"
    )
    compare_sourced: bool = Field(
        True,
        description="A step that answers from retrieved sources runs all its branches at once, "
        "and the judge compares those whose citations hold (agreement between them is not "
        "taken as evidence): on the dev sets it keeps a right answer more often than the first "
        "branch does",
    )
    judge: Literal["compare", "each", "none"] = Field(
        "compare",
        description="Between branches no check or agreement decides: one call comparing them, "
        "a call scoring each, or none (the first is kept)",
    )
    judge_threshold: float = Field(6.0, ge=1, le=10, description="Below it everywhere: replan")
    max_rounds: int = Field(2, ge=1, le=5, description="Plans tried before the best effort is kept")
    replan_one_step: bool = Field(
        False,
        description="Plan a task again when every branch fails its checks even where its plan "
        "is the task itself, one step made without the planner (a new round asks the same "
        "again); off: the branch that passes most of its checks is kept as a best effort",
    )
    plan_retries: int = Field(2, ge=0, le=5, description="Repairs of a malformed plan")
    max_steps: int | None = Field(
        None,
        ge=1,
        le=10,
        description="Most steps a plan may have; default: 4, but 1 on the embedded backend",
    )
    max_tool_rounds: int = Field(4, ge=1, le=20, description="Tool calls per branch (ReAct loop)")
    max_revisions: int = Field(
        2, ge=0, le=5, description="Revisions a branch may make after its skills' review fails it"
    )
    revise: Literal["feedback", "fresh"] | None = Field(
        None,
        description="How a branch whose checks failed tries again: from the checks' report "
        '("feedback"), or as a new sample of its prompt ("fresh", for a sampling branch); '
        'default: "fresh" on the embedded backend, whose small models fix little from a '
        'report, "feedback" elsewhere',
    )
    first_revisions: int = Field(
        0,
        ge=0,
        le=5,
        description="Revisions of a step's first branch before the others are tried "
        "(adaptive branching; at most max_revisions)",
    )
    use_past_tasks: bool = Field(True, description="Show similar past plans to the planner")
    max_tokens: int = Field(1024, ge=16, description="Reply length cap unless an agent sets one")


class AgentConfig(_Strict):
    backend: str = "embedded"
    model: str | None = Field(None, description="Overrides the backend's model")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    may_ask: bool | None = Field(None, description="May ask the person; default: the persona's")
    tools: bool | None = Field(
        None,
        description="Offer its branches the skills' tools; default: yes, except on the embedded "
        "backend, whose small models call tools poorly",
    )
    max_steps: int | None = Field(
        None,
        ge=1,
        le=10,
        description="Most steps its plans may have; default: [graph] max_steps, except 1 on the "
        "embedded backend, whose small models split tasks into steps that lose them",
    )


class PriceConfig(_Strict):
    """What a gateway charges for a model (or for every model of a backend), in the currency
    the person pays in, per million tokens."""

    input_per_mtok: float = Field(ge=0, description="Per million prompt tokens")
    output_per_mtok: float = Field(ge=0, description="Per million completion tokens")


class BudgetConfig(_Strict):
    """The most money model calls may cost, in the price table's currency (`[prices]`). When
    one is spent, calls on priced backends stop and the task rests until resumed; the embedded
    backend costs nothing and is never stopped, nor is a call with no price (it counts nothing)."""

    daily: float | None = Field(
        None,
        ge=0,
        strict=True,
        allow_inf_nan=False,
        description="All tasks together, per local calendar day; unset: no limit",
    )
    per_task: float | None = Field(
        None, ge=0, strict=True, allow_inf_nan=False, description="One task; unset: no limit"
    )


class KeysConfig(_Strict):
    store: Literal["auto", "keyring", "file"] = Field(
        "auto", description="auto uses the system keyring; file is a 0600 file, opt-in only"
    )


class ServeConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    engine: Literal["llama", "tnx", "nxdi"] = "llama"
    model: str = Field(
        DEFAULT_MODEL, description="llama: a named model or a GGUF; tnx/nxdi: a checkpoint folder"
    )
    tp_degree: int = Field(2, ge=1, le=128, description="tnx/nxdi: NeuronCores to shard over")
    amp: Literal["f32", "f16", "bf16"] = Field("bf16", description="tnx/nxdi: weight precision")
    n_positions: int = Field(
        4096, ge=128, description="tnx/nxdi: longest prompt + reply the compiled model takes"
    )
    batch_size: int = Field(1, ge=1, le=64, description="tnx/nxdi: compiled batch size")
    api_key: str | None = Field(None, description="Bearer token clients must send, if set")
    max_body_bytes: int = Field(4_000_000, ge=1024)


class NotifyConfig(_Strict):
    """How the person hears that a task needs them or has finished. Terminal channels work while
    the app is open, and (`quiet_when_focused`) only when it is not focused; the OS notification
    comes from the app while it is not focused, from the worker while no app is open; `command`
    (the top-level `notify_command`) runs from the worker, app or not."""

    on_question: bool = Field(True, description="Notify when a task waits for an answer")
    on_finish: bool = Field(True, description="Notify when a task is done or failed")
    toast: bool = Field(True, description="A toast inside the app")
    bell: bool = Field(True, description="The terminal bell")
    title: bool = Field(True, description="A marker in the terminal title while tasks wait")
    osc: Literal["off", "9", "777"] = Field(
        "off",
        description="Desktop notification by escape code: OSC 9 (iTerm2, WezTerm, kitty) "
        "or OSC 777 (rxvt, foot, Ghostty)",
    )
    desktop: bool = Field(
        True,
        description="An OS notification with buttons (desktop-notifier; notify-send where "
        "D-Bus has no notification server)",
    )
    quiet_when_focused: bool = Field(
        True, description="While the app is focused, only the toast (no bell, escape code or OS)"
    )
    command: bool = Field(True, description="Run notify_command (from the worker)")


class MemoryConfig(_Strict):
    """What agents are shown of the memories the person keeps (`myninja memory`)."""

    max_tokens: int = Field(
        200, ge=0, le=4000, description="Memories shown to an agent, in tokens; 0 shows none"
    )
    confirm: Literal["always", "first", "never"] = Field(
        "always",
        description="Which memories proposed from your answers wait for your yes: always; "
        "first (until you have confirmed one that is still kept); never (kept at once)",
    )


class ColbertConfig(_Strict):
    """ColBERTv2 late-interaction retrieval: a remote search endpoint, or a local index built
    with colbert-ai (the `colbert` extra) from a checkpoint. Either one turns it on."""

    url: HttpUrl | None = Field(
        None, description="A ColBERT search endpoint answering GET URL?query=…&k=… (DSPy's API)"
    )
    checkpoint: str | None = Field(None, description="A ColBERTv2 checkpoint folder (colbert-ai)")
    index_root: str | None = Field(None, description="The folder that holds colbert-ai indexes")
    index: str | None = Field(None, description="A prebuilt colbert-ai index name in index_root")
    timeout_s: float = Field(10.0, gt=0, description="Per request to the remote endpoint")


class WebConfig(_Strict):
    """Web search for the researcher: a provider, how much of it is read, and for how long what
    was fetched is reused. Off until a provider is chosen."""

    provider: Literal["none", "searxng", "brave", "tavily"] = Field(
        "none", description="none | searxng (self-hosted, no key) | brave | tavily (API keys)"
    )
    url: HttpUrl | None = Field(
        None, description="SearXNG's base URL (its JSON API must be enabled); others: default"
    )
    key_name: str | None = Field(None, description="Key store entry; default: the provider name")
    results: int = Field(8, ge=1, le=50, description="Search results asked for per query")
    pages: int = Field(3, ge=0, le=10, description="Result pages fetched and read per query")
    max_age_s: float = Field(86_400.0, ge=0, description="Reuse cached results and pages this long")
    timeout_s: float = Field(10.0, gt=0, description="Per search request")
    max_retries: int = Field(2, ge=0, le=6, description="Retries of a failed search request")
    requests_per_s: float = Field(1.0, gt=0, description="Most search requests a second")
    respect_robots: bool = Field(True, description="Skip pages robots.txt forbids us")
    allowed_hosts: list[HostName] = Field(
        default_factory=list,
        description="Hosts pages may be fetched from though they are on a loopback, private, "
        "link-local or metadata address (an intranet); a URL the task names needs none",
    )


class ResearchConfig(_Strict):
    """Where the researcher looks, and how much it reads."""

    corpora: list[str] | None = Field(
        None, description="Corpora the researcher searches; default: every local corpus"
    )
    retriever: Literal["auto", "bm25", "dense", "hybrid", "colbert"] = Field(
        "auto", description="auto: hybrid where the dense extra is installed, else bm25"
    )
    k: int = Field(10, ge=1, le=50, description="Passages given to the researcher's branches")
    follow_up: bool = Field(
        True, description="Branches may search again with a query written from what was found"
    )
    fetch_urls: bool = Field(True, description="Fetch and cite pages whose URLs a task names")
    fetch_max_bytes: int = Field(2_000_000, ge=1024, description="Largest page read")
    fetch_timeout_s: float = Field(15.0, gt=0, description="Longest a page may take")
    colbert: ColbertConfig = Field(default_factory=ColbertConfig)
    web: WebConfig = Field(default_factory=WebConfig)


class TuiConfig(_Strict):
    theme: str = Field("textual-dark", description="A Textual theme name")


class Permission(StrEnum):
    """What a tool may do beyond computing: the person grants these per skill. Defined here, in
    the bottom layer, because the config's grants name them; plugins import it with the rest of
    the contract, from myninja.skills."""

    NETWORK = "network"
    READ_FILES = "read_files"
    WRITE_FILES = "write_files"
    RUN_CODE = "run_code"
    SEND_EMAIL = "send_email"
    CALENDAR_WRITE = "calendar_write"


class McpServerConfig(_Strict):
    """An MCP server whose tools become a skill: a command run over stdio, or a streamable
    HTTP endpoint."""

    command: str | None = Field(None, description="The server's command (stdio transport)")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables")
    cwd: str | None = None
    url: HttpUrl | None = Field(
        None, description="A streamable HTTP endpoint, e.g. http://host/mcp"
    )
    permissions: list[Permission] = Field(
        default_factory=lambda: ["run_code"],
        description="What its tools may do, asked of the person before first use",
    )
    agents: list[str] = Field(default_factory=list, description="Agents offered it; default all")
    timeout_s: float = Field(30.0, gt=0, description="Per tool call")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("an MCP server needs exactly one of command (stdio) or url (HTTP)")
        return self


class SkillsConfig(_Strict):
    """What skills may touch. A permission granted here ("always" in the app's question) is
    never asked for again; others are asked once per task."""

    allowed_dirs: list[str] = Field(
        default_factory=list, description="Folders the files skill may read (and search)"
    )
    grants: dict[str, list[Permission]] = Field(
        default_factory=dict, description="Permissions given for good, by skill name"
    )
    disabled: list[str] = Field(default_factory=list, description="Skills not loaded")


class SandboxConfig(_Strict):
    """How model-written code is confined (docs/security.md)."""

    confinement: Literal["kernel", "in-process"] = Field(
        "kernel",
        description="kernel: Landlock, seccomp and namespaces, or the code is not run; "
        "in-process: the weaker audit-hook guard alone",
    )


class SchedulesConfig(_Strict):
    """How the worker runs scheduled tasks (`myninja schedule`)."""

    missed: Literal["once", "skip"] = Field(
        "once",
        description="Runs missed while no worker ran: once runs one of them, skip runs none",
    )
    pause_after: int = Field(
        3,
        ge=0,
        description="A schedule whose last this many runs all failed pauses itself (0: never)",
    )


def _iana_zone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not value or value.startswith("/") or ".." in value:
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (like Europe/Berlin)") from None
    return value


# As backend names: a word that is safe in a key name (cal-NAME) and in a task (cal:NAME).
CALENDAR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


def _calendar_name(name: str) -> str:
    if not CALENDAR_NAME.fullmatch(name):
        raise ValueError(
            f"invalid calendar name {name!r}: use a letter, then letters, digits, '-' or '_'"
        )
    return name


CalendarName = Annotated[str, AfterValidator(_calendar_name)]


class CalendarConfig(_Strict):
    """A CalDAV calendar (Nextcloud, Fastmail, iCloud, Radicale, Baïkal). Its password is in
    the key store under `cal-NAME` (`myninja keys set cal-NAME`)."""

    url: HttpUrl = Field(
        description="The calendar's URL, or the account's (principal or calendar home) URL"
    )
    username: str | None = Field(None, description="Login name; unset: no login")
    timezone: Annotated[str | None, AfterValidator(_iana_zone)] = Field(
        None, description="The owner's IANA zone: where all-day and floating events fall"
    )
    writable: bool = Field(False, description="Whether myninja may write events there")
    calendar: str | None = Field(
        None,
        description="Under an account URL, the calendar to use (its name or URL path); "
        "unset: the URL itself if it is a calendar, else the first calendar found",
    )
    timeout_s: float = Field(15.0, gt=0, le=300, description="Per request to the server")


class SchedulerConfig(_Strict):
    """What the scheduler agent knows of you without asking."""

    timezone: Annotated[str | None, AfterValidator(_iana_zone)] = Field(
        None,
        description="Your IANA time zone, e.g. Europe/Berlin; unset: a kept memory, else the "
        "machine's own (unless it is UTC), else the scheduler asks once and offers to remember",
    )
    dry_run: bool = Field(
        False,
        description="book_meeting writes and sends nothing, and says what it would have "
        "written (the event, the calendar's URL) and sent (recipients, subject)",
    )


def _is_loopback(host: str) -> bool:
    """Whether `host` names this machine: localhost or a loopback address."""
    bare = host.strip("[]").lower()
    if bare == "localhost" or bare.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def _email_address(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    # Loose on purpose, like the invitation's own check: whether the mailbox exists is the
    # server's business; a display name or a second address would never be the envelope sender.
    if text.count("@") != 1 or any(c.isspace() or c in '<>,;"' for c in text):
        raise ValueError(f"{value!r} is not an e-mail address (write the address alone)")
    local, domain = text.split("@")
    if not local or "." not in domain.strip("."):
        raise ValueError(f"{value!r} is not an e-mail address (write the address alone)")
    return text


class SmtpConfig(_Strict):
    """The mail server invitations go out through (iTIP REQUEST, RFC 6047). The password is in
    the key store under the name `smtp` (`myninja keys set smtp`); with none stored, no login.
    Off (nothing is sent) until `host` and `from_address` are set."""

    host: HostName | None = Field(
        None, description="The SMTP server, e.g. smtp.example.org; unset: nothing is sent"
    )
    port: int = Field(587, ge=1, le=65535, description="587 for starttls, 465 for tls")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls: upgrade after connecting (required, never skipped); tls: TLS "
        "from the first byte; none: plain text, allowed only to a loopback host (a local relay)",
    )
    username: str | None = Field(None, description="Login name; default: from_address")
    from_address: Annotated[str | None, AfterValidator(_email_address)] = Field(
        None, description="Your address: the organizer of invitations and their sender"
    )
    timeout_s: float = Field(
        20.0, gt=0, le=600, description="Per step (connect, each command); a send takes 4x at most"
    )

    @model_validator(mode="after")
    def _plain_text_only_to_this_machine(self) -> SmtpConfig:
        if self.security == "none" and self.host and not _is_loopback(self.host):
            raise ValueError(
                f'security = "none" sends the password and the mail unencrypted, so it is '
                f"allowed only to a loopback host (localhost, 127.0.0.1), not {self.host!r}; "
                f'use "starttls" or "tls"'
            )
        return self


class Config(_Strict):
    default_agent: AgentName = "assistant"
    backends: dict[str, BackendConfig] = Field(
        default_factory=lambda: {"embedded": EmbeddedBackendConfig()}
    )
    agents: dict[AgentName, AgentConfig] = Field(
        default_factory=lambda: {name: AgentConfig() for name in AGENTS}
    )
    graph: GraphConfig = Field(default_factory=GraphConfig)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    notify_command: str | None = Field(
        None, description="Run with a question or a finished task as JSON on stdin"
    )
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    tui: TuiConfig = Field(default_factory=TuiConfig)
    research: ResearchConfig = Field(default_factory=ResearchConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    skills: SkillsConfig = Field(default_factory=SkillsConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    mcp: dict[str, McpServerConfig] = Field(
        default_factory=dict, description="MCP servers, by the skill name their tools go under"
    )
    calendars: dict[CalendarName, CalendarConfig] = Field(
        default_factory=dict,
        description="CalDAV calendars, by name (`myninja calendars add`); `cal:NAME` in a task",
    )
    worker_idle_s: float = Field(300.0, ge=1, description="The background worker exits after this")
    schedules: SchedulesConfig = Field(default_factory=SchedulesConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict,
        description="Prices by model name, or by backend name for all its models (`myninja "
        "usage`); the embedded backend costs nothing",
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig)

    @model_validator(mode="after")
    def _agents_name_known_backends(self) -> Config:
        for agent, cfg in self.agents.items():
            if cfg.backend not in self.backends:
                known = ", ".join(sorted(self.backends))
                raise ValueError(
                    f"agents.{agent}.backend: unknown backend {cfg.backend!r}; name one of "
                    f"{known}, or add [backends.{cfg.backend}]"
                )
        return self

    def agent(self, name: str) -> AgentConfig:
        return self.agents.get(name, AgentConfig())  # type: ignore[call-overload]
