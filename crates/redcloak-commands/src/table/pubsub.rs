//! Pub/sub: message payloads are values; channel names and patterns stay as they are.
use super::{
    container, forward, pass, session, CommandSpec, Family::PubSub, Session, Shape::Pass,
    ValueArgs::At,
};

const PUBSUB: &[CommandSpec] = &[
    pass("CHANNELS", -2, PubSub),
    pass("NUMSUB", -2, PubSub),
    pass("NUMPAT", 2, PubSub),
    pass("SHARDCHANNELS", -2, PubSub),
    pass("SHARDNUMSUB", -2, PubSub),
    pass("HELP", 2, PubSub),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    forward("PUBLISH", 3, At(2), &Pass, PubSub),
    forward("SPUBLISH", 3, At(2), &Pass, PubSub),
    session("SUBSCRIBE", -2, Session::PubSub, PubSub),
    session("PSUBSCRIBE", -2, Session::PubSub, PubSub),
    session("SSUBSCRIBE", -2, Session::PubSub, PubSub),
    session("UNSUBSCRIBE", -1, Session::PubSub, PubSub),
    session("PUNSUBSCRIBE", -1, Session::PubSub, PubSub),
    session("SUNSUBSCRIBE", -1, Session::PubSub, PubSub),
    container("PUBSUB", -2, PubSub, PUBSUB),
];
