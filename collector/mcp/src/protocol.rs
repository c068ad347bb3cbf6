//! The MCP vocabulary, in one place: method names ([`Method`]), protocol
//! versions and their eras ([`PROTOCOL_VERSIONS`], [`Era`]), the JSON-RPC and
//! MCP error codes ([`error_code`]), the methods removed by 2026-07-28, the
//! `_meta` key names, and the fixed `result` values of 2026-07-28.
//!
//! Sources: the MCP schema of each revision (`schema/<version>/schema.ts`:
//! the `ClientRequest`, `ServerRequest` and notification unions), the Tasks
//! extension, JSON-RPC 2.0 §5.1, and `/work/shared/reference/mcp-wire.md`
//! (§1 for the legacy revisions, §2 for 2026-07-28).

/// Declares [`Method`] from one list of `Variant = "wire name"` pairs.
macro_rules! methods {
    ($($(#[$doc:meta])* $v:ident = $s:literal,)*) => {
        /// An MCP method known to the decoder (requests and notifications of
        /// every revision 2024-11-05 … 2026-07-28, plus the Tasks extension).
        /// A method not listed here is carried as its text only.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Method {
            $($(#[$doc])* $v,)*
        }

        impl Method {
            /// Every known method, in declaration order.
            pub const ALL: &'static [Method] = &[$(Method::$v,)*];

            /// The method's name as it appears in the `method` member and the
            /// `Mcp-Method` header.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Method::$v => $s,)*
                }
            }

            /// The method named `name` (exact, case-sensitive), if known.
            pub fn parse(name: &str) -> Option<Method> {
                Some(match name {
                    $($s => Method::$v,)*
                    _ => return None,
                })
            }
        }
    };
}

methods! {
    /// `initialize` (legacy handshake).
    Initialize = "initialize",
    /// `ping`.
    Ping = "ping",
    /// `tools/list`.
    ToolsList = "tools/list",
    /// `tools/call`.
    ToolsCall = "tools/call",
    /// `prompts/list`.
    PromptsList = "prompts/list",
    /// `prompts/get`.
    PromptsGet = "prompts/get",
    /// `resources/list`.
    ResourcesList = "resources/list",
    /// `resources/read`.
    ResourcesRead = "resources/read",
    /// `resources/templates/list`.
    ResourcesTemplatesList = "resources/templates/list",
    /// `resources/subscribe`.
    ResourcesSubscribe = "resources/subscribe",
    /// `resources/unsubscribe`.
    ResourcesUnsubscribe = "resources/unsubscribe",
    /// `completion/complete`.
    CompletionComplete = "completion/complete",
    /// `logging/setLevel`.
    LoggingSetLevel = "logging/setLevel",
    /// `roots/list` (server to client).
    RootsList = "roots/list",
    /// `sampling/createMessage` (server to client).
    SamplingCreateMessage = "sampling/createMessage",
    /// `elicitation/create` (server to client).
    ElicitationCreate = "elicitation/create",
    /// `server/discover` (2026-07-28).
    ServerDiscover = "server/discover",
    /// `subscriptions/listen` (2026-07-28, a long-lived stream).
    SubscriptionsListen = "subscriptions/listen",
    /// `tasks/get` (Tasks extension).
    TasksGet = "tasks/get",
    /// `tasks/list` (2025-11-25 tasks).
    TasksList = "tasks/list",
    /// `tasks/result` (2025-11-25 tasks).
    TasksResult = "tasks/result",
    /// `tasks/cancel` (Tasks extension).
    TasksCancel = "tasks/cancel",
    /// `tasks/update` (Tasks extension, 2026-07-28).
    TasksUpdate = "tasks/update",
    /// `notifications/initialized`.
    NotificationsInitialized = "notifications/initialized",
    /// `notifications/cancelled`.
    NotificationsCancelled = "notifications/cancelled",
    /// `notifications/progress`.
    NotificationsProgress = "notifications/progress",
    /// `notifications/message` (a log message).
    NotificationsMessage = "notifications/message",
    /// `notifications/roots/list_changed`.
    NotificationsRootsListChanged = "notifications/roots/list_changed",
    /// `notifications/tools/list_changed`.
    NotificationsToolsListChanged = "notifications/tools/list_changed",
    /// `notifications/prompts/list_changed`.
    NotificationsPromptsListChanged = "notifications/prompts/list_changed",
    /// `notifications/resources/list_changed`.
    NotificationsResourcesListChanged = "notifications/resources/list_changed",
    /// `notifications/resources/updated`.
    NotificationsResourcesUpdated = "notifications/resources/updated",
    /// `notifications/tasks/status` (2025-11-25 tasks).
    NotificationsTasksStatus = "notifications/tasks/status",
}

impl Method {
    /// The method named by the bytes `name` (a header value), if known.
    pub fn from_bytes(name: &[u8]) -> Option<Method> {
        std::str::from_utf8(name).ok().and_then(Method::parse)
    }

    /// Which `params` member the 2026-07-28 `Mcp-Name` header must equal for
    /// this method, when the header is required (mcp-wire.md §2.4; Tasks
    /// extension for `taskId`).
    pub const fn name_param(self) -> Option<NameParam> {
        match self {
            Method::ToolsCall | Method::PromptsGet => Some(NameParam::Name),
            Method::ResourcesRead => Some(NameParam::Uri),
            Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => Some(NameParam::TaskId),
            _ => None,
        }
    }

    /// Removed by the 2026-07-28 revision (mcp-wire.md §2.11 and §2.13:
    /// `logging/setLevel`, `ping`, `resources/subscribe` and
    /// `resources/unsubscribe`, the 2025-11-25 `tasks/result`, `tasks/list`
    /// and `notifications/tasks/status`, and `notifications/roots/list_changed`).
    pub const fn removed_in_2026_07_28(self) -> bool {
        matches!(
            self,
            Method::LoggingSetLevel
                | Method::Ping
                | Method::ResourcesSubscribe
                | Method::ResourcesUnsubscribe
                | Method::TasksResult
                | Method::TasksList
                | Method::NotificationsTasksStatus
                | Method::NotificationsRootsListChanged
        )
    }
}

/// The `'static` name of the known method `name` (a `method` member).
pub(crate) fn known_method(name: &str) -> Option<&'static str> {
    Method::parse(name).map(Method::as_str)
}

/// The `'static` name of the known method `name` (header bytes).
pub(crate) fn known_method_bytes(name: &[u8]) -> Option<&'static str> {
    Method::from_bytes(name).map(Method::as_str)
}

/// A method of the Tasks namespace (`tasks/…`), known or not: its
/// `params.taskId` names the task.
pub fn is_tasks_method(name: &str) -> bool {
    name.starts_with("tasks/")
}

/// Which `params` member `Mcp-Name` carries ([`Method::name_param`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameParam {
    /// `params.name` (`tools/call`, `prompts/get`).
    Name,
    /// `params.uri` (`resources/read`).
    Uri,
    /// `params.taskId` (`tasks/get`, `tasks/update`, `tasks/cancel`).
    TaskId,
}

impl NameParam {
    /// The member's name: `name`, `uri` or `taskId`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NameParam::Name => "name",
            NameParam::Uri => "uri",
            NameParam::TaskId => "taskId",
        }
    }
}

/// Protocol era of one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Initialize-based, session-header era (2025-11-25 and earlier).
    Legacy,
    /// Stateless era (2026-07-28 and later, including the RC's `DRAFT-2026-v1`).
    Modern,
}

/// Every protocol version the decoder knows, oldest first, with its era
/// (mcp-wire.md §1; `DRAFT-2026-v1` is the 2026-07-28 RC's string, §2.1).
pub const PROTOCOL_VERSIONS: &[(&str, Era)] = &[
    ("2024-11-05", Era::Legacy),
    ("2025-03-26", Era::Legacy),
    ("2025-06-18", Era::Legacy),
    ("2025-11-25", Era::Legacy),
    ("2026-07-28", Era::Modern),
    ("DRAFT-2026-v1", Era::Modern),
];

impl Era {
    /// Classifies by the `MCP-Protocol-Version` header: absent or a legacy
    /// version of [`PROTOCOL_VERSIONS`] (surrounding whitespace ignored) →
    /// legacy; anything else → modern (py 2.3.0 server routing rule,
    /// `mcp/server/streamable_http_manager.py`).
    pub fn classify(header: Option<&str>) -> Era {
        match header {
            None => Era::Legacy,
            Some(v) => {
                let v = trim(v);
                let legacy = PROTOCOL_VERSIONS
                    .iter()
                    .any(|&(k, era)| era == Era::Legacy && k == v);
                if legacy { Era::Legacy } else { Era::Modern }
            }
        }
    }

    /// `legacy` / `modern`.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// The `'static` text of the known protocol version `v` (header bytes).
pub(crate) fn known_version_bytes(v: &[u8]) -> Option<&'static str> {
    PROTOCOL_VERSIONS
        .iter()
        .find(|(k, _)| k.as_bytes() == v)
        .map(|&(k, _)| k)
}

/// [`known_version_bytes`] of a string.
pub(crate) fn known_version(v: &str) -> Option<&'static str> {
    known_version_bytes(v.as_bytes())
}

/// `s.trim()`, without the Unicode whitespace walk when `s` starts and ends
/// with visible ASCII (every Unicode whitespace is either ASCII at most
/// `' '` or starts with a byte of `0x80` or more), as header values do.
pub(crate) fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// JSON-RPC 2.0 (§5.1) and MCP error codes.
pub mod error_code {
    /// Invalid JSON (JSON-RPC 2.0).
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object (JSON-RPC 2.0).
    pub const INVALID_REQUEST: i64 = -32600;
    /// Method not found (JSON-RPC 2.0).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid parameters (JSON-RPC 2.0; resource not found from 2026-07-28, SEP-2164).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error (JSON-RPC 2.0).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Connection closed (SDK `ErrorCode.ConnectionClosed`; implementation-defined range).
    pub const CONNECTION_CLOSED: i64 = -32000;
    /// Request timeout (SDK `ErrorCode.RequestTimeout`; HeaderMismatch in the 2026 RC).
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// Resource not found (2024-11-05 … 2025-11-25).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// HeaderMismatch: routing header disagrees with the body (2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// URL elicitation required (2025-11-25).
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;

    /// Codes that are the caller's fault and do not make a server span an
    /// error (OTel MCP semconv server rules, common.yaml citing v1.43.0).
    pub const CALLER_FAULT: &[i64] = &[
        PARSE_ERROR,
        INVALID_REQUEST,
        METHOD_NOT_FOUND,
        INVALID_PARAMS,
        RESOURCE_NOT_FOUND,
    ];

    /// The known codes as `'static` decimal text.
    pub fn known_text(c: i64) -> Option<&'static str> {
        Some(match c {
            PARSE_ERROR => "-32700",
            INVALID_REQUEST => "-32600",
            METHOD_NOT_FOUND => "-32601",
            INVALID_PARAMS => "-32602",
            INTERNAL_ERROR => "-32603",
            CONNECTION_CLOSED => "-32000",
            REQUEST_TIMEOUT => "-32001",
            RESOURCE_NOT_FOUND => "-32002",
            HEADER_MISMATCH => "-32020",
            URL_ELICITATION_REQUIRED => "-32042",
            _ => return None,
        })
    }
}

/// `_meta` key carrying the protocol version (2026-07-28, mcp-wire.md §2.3).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client implementation (2026-07-28).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key carrying client capabilities (2026-07-28).
pub const META_CLIENT_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the W3C trace parent (SEP-414, mcp-wire.md §2.12).
pub const META_TRACEPARENT: &str = "traceparent";
/// `_meta` key of the W3C trace state (SEP-414).
pub const META_TRACESTATE: &str = "tracestate";
/// `_meta` key of the progress token (`basic/utilities/progress.mdx`).
pub const META_PROGRESS_TOKEN: &str = "progressToken";

/// `result.resultType` values of 2026-07-28 (MCP `basic/index.mdx`).
pub const RESULT_TYPES: &[&str] = &["complete", "input_required", "task"];

/// `result.cacheScope` values of 2026-07-28 (MCP `server/resources.mdx`).
pub const CACHE_SCOPES: &[&str] = &["private", "shared", "public"];

/// The `'static` text of a [`RESULT_TYPES`] value.
pub(crate) fn known_result_type(t: &str) -> Option<&'static str> {
    RESULT_TYPES.iter().find(|&&k| k == t).copied()
}

/// The `'static` text of a [`CACHE_SCOPES`] value.
pub(crate) fn known_cache_scope(t: &str) -> Option<&'static str> {
    CACHE_SCOPES.iter().find(|&&k| k == t).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn methods_round_trip() {
        for &m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
            assert_eq!(Method::from_bytes(m.as_str().as_bytes()), Some(m));
            assert_eq!(known_method(m.as_str()), Some(m.as_str()));
        }
        assert_eq!(Method::ALL.len(), 33);
        assert_eq!(Method::parse("Tools/call"), None);
    }

    #[test]
    fn era_rule() {
        assert_eq!(Era::classify(None), Era::Legacy);
        assert_eq!(Era::classify(Some("2025-06-18")), Era::Legacy);
        assert_eq!(Era::classify(Some(" 2025-06-18\t")), Era::Legacy);
        assert_eq!(Era::classify(Some("2026-07-28")), Era::Modern);
        assert_eq!(Era::classify(Some("DRAFT-2026-v1")), Era::Modern);
        assert_eq!(Era::classify(Some("1999-01-01")), Era::Modern);
    }

    #[test]
    fn removed_and_name_params() {
        assert!(Method::Ping.removed_in_2026_07_28());
        assert!(!Method::ToolsCall.removed_in_2026_07_28());
        assert_eq!(Method::ToolsCall.name_param(), Some(NameParam::Name));
        assert_eq!(
            Method::ResourcesRead.name_param().map(NameParam::as_str),
            Some("uri")
        );
        assert_eq!(Method::TasksCancel.name_param(), Some(NameParam::TaskId));
        assert_eq!(Method::ToolsList.name_param(), None);
    }

    proptest! {
        /// The ASCII shortcut trims exactly as `str::trim`.
        #[test]
        fn trim_is_str_trim(
            s in "[ \t\u{a0}\u{3000}\u{85}]{0,2}[a-z0-9.\u{e9} -]{0,6}[ \t\u{a0}\u{2028}]{0,2}",
        ) {
            prop_assert_eq!(trim(&s), s.trim());
        }

        #[test]
        fn known_error_codes_are_their_decimal_text(c in -33000i64..-31000) {
            if let Some(k) = error_code::known_text(c) {
                prop_assert_eq!(k, c.to_string());
            }
        }
    }
}
