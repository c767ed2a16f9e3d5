//! Conversions between Python objects and the engine's types.

mod args;
mod basis;
mod from_json;
mod to_json;

pub(crate) use args::{
    dict_arg, int_arg, key_items, optional_bool, optional_seconds, positive_int, positive_u32,
    seconds_to_millis, session_id_arg, str_arg,
};
pub(crate) use basis::basis_arg;
pub(crate) use from_json::fill_dict;
pub(crate) use to_json::{data_from_py, required_data};
