//! A [`Network`]: one Fabric channel seen through the gateway.

use std::sync::Arc;

use crate::block_events::BlockEventsBuilder;
use crate::chaincode_events::ChaincodeEventsBuilder;
use crate::contract::Contract;
use crate::gateway::GatewayInner;

/// A Fabric channel (`storage`, `sharing`, …) reached through the gateway. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    gateway: Arc<GatewayInner>,
    name: String,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Network {
    pub(crate) fn new(gateway: Arc<GatewayInner>, name: String) -> Self {
        Self { gateway, name }
    }

    /// The channel name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A smart contract: a chaincode, and optionally one named contract inside it (its
    /// transaction names are then sent as `Contract:Function`).
    #[must_use]
    pub fn contract(&self, chaincode: impl Into<String>, contract_name: Option<&str>) -> Contract {
        Contract::new(
            Arc::clone(&self.gateway),
            self.name.clone(),
            chaincode.into(),
            contract_name.map(str::to_owned),
        )
    }

    /// Events emitted by a chaincode's committed transactions. By default from the next
    /// committed block; see [`ChaincodeEventsBuilder::start_block`] and
    /// [`ChaincodeEventsBuilder::checkpoint`] to replay.
    #[must_use]
    pub fn chaincode_events(&self, chaincode: impl Into<String>) -> ChaincodeEventsBuilder {
        ChaincodeEventsBuilder::new(
            Arc::clone(&self.gateway),
            self.name.clone(),
            chaincode.into(),
        )
    }

    /// Blocks committed to this channel, from the peer's Deliver service.
    #[must_use]
    pub fn block_events(&self) -> BlockEventsBuilder {
        BlockEventsBuilder::new(Arc::clone(&self.gateway), self.name.clone())
    }
}
