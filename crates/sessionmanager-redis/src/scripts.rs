//! The Lua scripts that make each write one atomic step on the server. They
//! are loaded once when the store opens and called by their SHA-1
//! (`EVALSHA`); redis-rs loads one again if the server forgot it (a restart,
//! `SCRIPT FLUSH`).

use redis::Script;

/// A script: the shared prelude (helpers and conventions) followed by `$file`.
macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/prelude.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// Every script of the store, hashed once when the store opens.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) save: Script,
    pub(crate) touch: Script,
    pub(crate) delete: Script,
    pub(crate) rotate: Script,
    pub(crate) list_user: Script,
    pub(crate) delete_user: Script,
    pub(crate) purge: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            create: script!("create.lua"),
            save: script!("save.lua"),
            touch: script!("touch.lua"),
            delete: script!("delete.lua"),
            rotate: script!("rotate.lua"),
            list_user: script!("list_user.lua"),
            delete_user: script!("delete_user.lua"),
            purge: script!("purge.lua"),
        }
    }
}
