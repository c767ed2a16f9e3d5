//! The Lua scripts that make each write one atomic step on the server. They
//! are loaded once when the store opens and called by their SHA-1
//! (`EVALSHA`); redis-rs loads one again if the server forgot it (a restart,
//! `SCRIPT FLUSH`).

use redis::Script;

/// A script's source: its flags line (Redis 7 script flags), the shared
/// prelude (helpers and conventions), then `$file`.
///
/// A script without a flags line is refused under `maxmemory` only if its
/// first write happens to be a command that is, so every script declares
/// itself: those that add data are refused when the server is out of memory
/// (the default for a flags line without `allow-oom`), and only those that
/// free memory or move an expiry run regardless, so that logging out and
/// sweeping still work on a full server.
macro_rules! source {
    ($flags:literal, $($file:literal),+) => {
        concat!(
            $flags,
            "\n",
            include_str!("lua/prelude.lua"),
            $(include_str!(concat!("lua/", $file))),+
        )
    };
}

/// Every script's source, in the order of [`Scripts`]' fields.
pub(crate) const SOURCES: [&str; 15] = [
    source!("#!lua", "create.lua"),
    source!("#!lua", "save.lua"),
    source!("#!lua", "edit.lua"),
    source!("#!lua flags=allow-oom", "touch.lua"),
    source!("#!lua flags=allow-oom", "delete.lua"),
    source!("#!lua", "rotate.lua"),
    source!("#!lua flags=no-writes", "list_user.lua"),
    source!("#!lua flags=allow-oom", "delete_user.lua"),
    source!("#!lua flags=allow-oom", "purge.lua"),
    source!("#!lua", "rate.lua"),
    source!("#!lua flags=no-writes", "export.lua"),
    source!("#!lua", "import.lua"),
    source!("#!lua", "link.lua"),
    source!("#!lua", "earlier_layout.lua", "earlier_read.lua"),
    source!(
        "#!lua flags=allow-oom",
        "earlier_layout.lua",
        "earlier_drop.lua"
    ),
];

/// Every script of the store, hashed once when the store opens.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) save: Script,
    pub(crate) edit: Script,
    pub(crate) touch: Script,
    pub(crate) delete: Script,
    pub(crate) rotate: Script,
    pub(crate) list_user: Script,
    pub(crate) delete_user: Script,
    pub(crate) purge: Script,
    pub(crate) rate: Script,
    pub(crate) export: Script,
    pub(crate) import: Script,
    pub(crate) link: Script,
    pub(crate) earlier_read: Script,
    pub(crate) earlier_drop: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let [
            create,
            save,
            edit,
            touch,
            delete,
            rotate,
            list_user,
            delete_user,
            purge,
            rate,
            export,
            import,
            link,
            earlier_read,
            earlier_drop,
        ] = SOURCES.map(Script::new);
        Self {
            create,
            save,
            edit,
            touch,
            delete,
            rotate,
            list_user,
            delete_user,
            purge,
            rate,
            export,
            import,
            link,
            earlier_read,
            earlier_drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::RedisConfig;

    #[test]
    fn the_scripts_keep_expired_records_as_long_as_the_config_says() {
        let line = format!(
            "local KEEP_EXPIRED = {}\n",
            RedisConfig::KEEP_EXPIRED.as_millis()
        );
        assert!(include_str!("lua/prelude.lua").contains(&line), "{line}");
    }
}
