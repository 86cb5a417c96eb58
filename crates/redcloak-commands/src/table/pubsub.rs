//! Pub/sub: message payloads are values; channel names and patterns stay as they are.
use super::{
    container, forward, pass, session, Bind, Channels::*, CommandSpec, Effect::*, Family::PubSub,
    Shape::Pass, ValueArgs::At,
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
    forward("PUBLISH", 3, At(2), &Pass, PubSub)
        .effect(Publish)
        .bind(Bind::Transit),
    forward("SPUBLISH", 3, At(2), &Pass, PubSub)
        .effect(Publish)
        .bind(Bind::Transit),
    session("SUBSCRIBE", -2, Subscribe(Plain), PubSub),
    session("PSUBSCRIBE", -2, Subscribe(Pattern), PubSub),
    session("SSUBSCRIBE", -2, Subscribe(Shard), PubSub),
    session("UNSUBSCRIBE", -1, Unsubscribe(Plain), PubSub),
    session("PUNSUBSCRIBE", -1, Unsubscribe(Pattern), PubSub),
    session("SUNSUBSCRIBE", -1, Unsubscribe(Shard), PubSub),
    container("PUBSUB", -2, PubSub, PUBSUB),
];
