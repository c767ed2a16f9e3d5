//! The Lua scripts that make each write one atomic step on the server. They
//! are loaded once when the store opens and called by their SHA-1
//! (`EVALSHA`); redis-rs loads one again if the server forgot it (a restart,
//! `SCRIPT FLUSH`).

use redis::Script;

/// A script's source: the shared prelude (helpers and conventions) followed by `$file`.
macro_rules! source {
    ($file:literal) => {
        concat!(
            include_str!("lua/prelude.lua"),
            include_str!(concat!("lua/", $file))
        )
    };
}

/// Every script's source, in the order of [`Scripts`]' fields.
pub(crate) const SOURCES: [&str; 9] = [
    source!("create.lua"),
    source!("save.lua"),
    source!("edit.lua"),
    source!("touch.lua"),
    source!("delete.lua"),
    source!("rotate.lua"),
    source!("list_user.lua"),
    source!("delete_user.lua"),
    source!("purge.lua"),
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
        }
    }
}
