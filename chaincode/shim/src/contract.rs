//! Contract dispatch as Fabric's contract APIs do it: the first argument names the transaction
//! as `Contract:Function` (or just `Function` for the default contract), the rest are its
//! parameters; strings pass as they are, numbers and booleans as their JSON text, structured
//! values as JSON. `org.hyperledger.fabric:GetMetadata` describes every contract.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::chaincode::{Chaincode, Invocation};
use crate::error::ContractError;
use crate::ledger::{ChaincodeResponse, Ledger};

/// The system contract every Fabric contract chaincode answers.
pub const SYSTEM_CONTRACT: &str = "org.hyperledger.fabric";

/// Largest accepted argument, so a malformed call cannot make the chaincode allocate freely.
pub const MAX_ARGUMENT_BYTES: usize = 4 * 1024 * 1024;

/// A value that can be read from one transaction argument.
pub trait FromArg: Sized {
    /// Decodes the argument named `name`.
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError>;
    /// The JSON schema advertised in the contract metadata.
    fn schema() -> Value;
}

/// A value that can be a transaction's result.
pub trait IntoPayload {
    /// Encodes the result.
    fn into_payload(self) -> Result<Vec<u8>, ContractError>;
    /// The JSON schema advertised in the contract metadata (`None` for no result).
    fn schema() -> Option<Value>;
}

/// Wrapper for parameters and results carried as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Json<T>(pub T);

fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, ContractError> {
    std::str::from_utf8(bytes)
        .map_err(|_| ContractError::BadArguments(format!("argument {name} is not valid UTF-8")))
}

impl FromArg for String {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        utf8(bytes, name).map(str::to_owned)
    }
    fn schema() -> Value {
        json!({"type": "string"})
    }
}

impl FromArg for Vec<u8> {
    fn from_arg(bytes: &[u8], _name: &str) -> Result<Self, ContractError> {
        Ok(bytes.to_vec())
    }
    fn schema() -> Value {
        json!({"type": "string", "format": "byte"})
    }
}

impl FromArg for bool {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        match utf8(bytes, name)? {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(ContractError::BadArguments(format!(
                "argument {name}: expected true or false, got {other:?}"
            ))),
        }
    }
    fn schema() -> Value {
        json!({"type": "boolean"})
    }
}

macro_rules! integer_arg {
    ($($t:ty),*) => {$(
        impl FromArg for $t {
            fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
                let text = utf8(bytes, name)?;
                text.trim().parse::<$t>().map_err(|_| {
                    ContractError::BadArguments(format!(
                        "argument {name}: expected an integer ({}), got {text:?}", stringify!($t)
                    ))
                })
            }
            fn schema() -> Value {
                json!({"type": "integer", "format": stringify!($t)})
            }
        }
        impl IntoPayload for $t {
            fn into_payload(self) -> Result<Vec<u8>, ContractError> {
                Ok(self.to_string().into_bytes())
            }
            fn schema() -> Option<Value> {
                Some(json!({"type": "integer", "format": stringify!($t)}))
            }
        }
    )*};
}
integer_arg!(i32, i64, u32, u64);

impl<T: DeserializeOwned> FromArg for Json<T> {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        serde_json::from_slice(bytes).map(Json).map_err(|e| {
            ContractError::BadArguments(format!("argument {name} is not the expected JSON: {e}"))
        })
    }
    fn schema() -> Value {
        json!({"type": "object"})
    }
}

impl IntoPayload for () {
    fn into_payload(self) -> Result<Vec<u8>, ContractError> {
        Ok(Vec::new())
    }
    fn schema() -> Option<Value> {
        None
    }
}

impl IntoPayload for String {
    fn into_payload(self) -> Result<Vec<u8>, ContractError> {
        Ok(self.into_bytes())
    }
    fn schema() -> Option<Value> {
        Some(json!({"type": "string"}))
    }
}

impl IntoPayload for bool {
    fn into_payload(self) -> Result<Vec<u8>, ContractError> {
        Ok(if self {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        })
    }
    fn schema() -> Option<Value> {
        Some(json!({"type": "boolean"}))
    }
}

impl IntoPayload for Vec<u8> {
    fn into_payload(self) -> Result<Vec<u8>, ContractError> {
        Ok(self)
    }
    fn schema() -> Option<Value> {
        Some(json!({"type": "string", "format": "byte"}))
    }
}

impl<T: Serialize> IntoPayload for Json<T> {
    fn into_payload(self) -> Result<Vec<u8>, ContractError> {
        serde_json::to_vec(&self.0)
            .map_err(|e| ContractError::rejected(format!("cannot encode result: {e}")))
    }
    fn schema() -> Option<Value> {
        Some(json!({"type": "object"}))
    }
}

/// A parameter list decoded from the arguments after the function name.
pub trait FromArgs: Sized {
    /// How many arguments the transaction takes.
    const COUNT: usize;
    /// Decodes them; `names` has `COUNT` entries.
    fn from_args(args: &[Vec<u8>], names: &[&'static str]) -> Result<Self, ContractError>;
    /// Schemas in order.
    fn schemas() -> Vec<Value>;
}

macro_rules! tuple_args {
    ($count:expr; $($t:ident $i:tt),*) => {
        impl<$($t: FromArg),*> FromArgs for ($($t,)*) {
            const COUNT: usize = $count;
            #[allow(unused_variables)]
            fn from_args(args: &[Vec<u8>], names: &[&'static str]) -> Result<Self, ContractError> {
                Ok(($($t::from_arg(&args[$i], names[$i])?,)*))
            }
            fn schemas() -> Vec<Value> {
                vec![$($t::schema()),*]
            }
        }
    };
}
tuple_args!(0;);
tuple_args!(1; A 0);
tuple_args!(2; A 0, B 1);
tuple_args!(3; A 0, B 1, C 2);
tuple_args!(4; A 0, B 1, C 2, D 3);
tuple_args!(5; A 0, B 1, C 2, D 3, E 4);
tuple_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

type Handler = Box<dyn Fn(&dyn Ledger, &[Vec<u8>]) -> Result<Vec<u8>, ContractError> + Send + Sync>;

/// Whether a transaction changes the ledger (metadata only: the peer decides by how the
/// client calls it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKind {
    /// Meant to be submitted.
    Submit,
    /// Meant to be evaluated.
    Evaluate,
}

struct Transaction {
    kind: TxKind,
    params: Vec<(&'static str, Value)>,
    returns: Option<Value>,
    handler: Handler,
}

/// A named group of transactions.
pub struct Contract {
    name: String,
    transactions: BTreeMap<String, Transaction>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("name", &self.name)
            .field(
                "transactions",
                &self.transactions.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Contract {
    /// A contract with no transactions yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            transactions: BTreeMap::new(),
        }
    }

    /// The contract's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a transaction meant to be submitted.
    ///
    /// # Panics
    /// When `params` does not name exactly as many parameters as the handler takes: that is a
    /// programming error, caught the first time the contract is built.
    pub fn submit<A, R, F>(self, name: &str, params: &[&'static str], handler: F) -> Self
    where
        A: FromArgs + 'static,
        R: IntoPayload + 'static,
        F: Fn(&dyn Ledger, A) -> Result<R, ContractError> + Send + Sync + 'static,
    {
        self.transaction(TxKind::Submit, name, params, handler)
    }

    /// Adds a transaction meant to be evaluated (a query).
    ///
    /// # Panics
    /// As [`Self::submit`].
    pub fn evaluate<A, R, F>(self, name: &str, params: &[&'static str], handler: F) -> Self
    where
        A: FromArgs + 'static,
        R: IntoPayload + 'static,
        F: Fn(&dyn Ledger, A) -> Result<R, ContractError> + Send + Sync + 'static,
    {
        self.transaction(TxKind::Evaluate, name, params, handler)
    }

    fn transaction<A, R, F>(
        mut self,
        kind: TxKind,
        name: &str,
        params: &[&'static str],
        handler: F,
    ) -> Self
    where
        A: FromArgs + 'static,
        R: IntoPayload + 'static,
        F: Fn(&dyn Ledger, A) -> Result<R, ContractError> + Send + Sync + 'static,
    {
        assert_eq!(
            params.len(),
            A::COUNT,
            "transaction {name}: {} parameter names for {} parameters",
            params.len(),
            A::COUNT
        );
        let names: Vec<&'static str> = params.to_vec();
        let tx_name = name.to_owned();
        let handler: Handler = Box::new(move |ledger, args| {
            if args.len() != names.len() {
                return Err(ContractError::BadArguments(format!(
                    "{tx_name} takes {} arguments ({}), {} given",
                    names.len(),
                    names.join(", "),
                    args.len()
                )));
            }
            let decoded = A::from_args(args, &names)?;
            handler(ledger, decoded)?.into_payload()
        });
        let params = params.iter().copied().zip(A::schemas()).collect();
        self.transactions.insert(
            name.to_owned(),
            Transaction {
                kind,
                params,
                returns: R::schema(),
                handler,
            },
        );
        self
    }

    fn metadata(&self) -> Value {
        let transactions: Vec<Value> = self
            .transactions
            .iter()
            .map(|(name, tx)| {
                let parameters: Vec<Value> = tx
                    .params
                    .iter()
                    .map(|(n, schema)| json!({"name": n, "schema": schema}))
                    .collect();
                let tag = match tx.kind {
                    TxKind::Submit => json!(["submit", "SUBMIT"]),
                    TxKind::Evaluate => json!(["evaluate", "EVALUATE"]),
                };
                let mut entry = json!({"name": name, "parameters": parameters, "tag": tag});
                if let Some(returns) = &tx.returns {
                    entry["returns"] = returns.clone();
                }
                entry
            })
            .collect();
        json!({"name": self.name, "info": {"title": self.name, "version": "latest"}, "transactions": transactions})
    }
}

/// A chaincode made of contracts, dispatching `Contract:Function` names.
pub struct Router {
    title: String,
    version: String,
    contracts: BTreeMap<String, Arc<Contract>>,
    default_contract: Option<String>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("contracts", &self.contracts.keys().collect::<Vec<_>>())
            .field("default_contract", &self.default_contract)
            .finish()
    }
}

impl Router {
    /// An empty chaincode with a title and version for its metadata.
    pub fn new(title: &str, version: &str) -> Self {
        Self {
            title: title.to_owned(),
            version: version.to_owned(),
            contracts: BTreeMap::new(),
            default_contract: None,
        }
    }

    /// Adds a contract; the first one added is the default (called without a `Contract:` prefix).
    pub fn with(mut self, contract: Contract) -> Self {
        if self.default_contract.is_none() {
            self.default_contract = Some(contract.name.clone());
        }
        self.contracts
            .insert(contract.name.clone(), Arc::new(contract));
        self
    }

    /// The metadata document served by `org.hyperledger.fabric:GetMetadata`.
    pub fn metadata(&self) -> Value {
        let contracts: serde_json::Map<String, Value> = self
            .contracts
            .iter()
            .map(|(name, contract)| (name.clone(), contract.metadata()))
            .collect();
        json!({
            "$schema": "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json",
            "info": {"title": self.title, "version": self.version},
            "contracts": contracts,
            "components": {"schemas": {}}
        })
    }

    fn dispatch(&self, ledger: &dyn Ledger, args: &[Vec<u8>]) -> Result<Vec<u8>, ContractError> {
        let (name, rest) = args
            .split_first()
            .ok_or_else(|| ContractError::UnknownFunction("no function name given".into()))?;
        if let Some((index, too_long)) = rest
            .iter()
            .enumerate()
            .find(|(_, a)| a.len() > MAX_ARGUMENT_BYTES)
        {
            return Err(ContractError::BadArguments(format!(
                "argument {} is {} bytes, more than the {MAX_ARGUMENT_BYTES} allowed",
                index + 1,
                too_long.len()
            )));
        }
        let name = std::str::from_utf8(name).map_err(|_| {
            ContractError::UnknownFunction("function name is not valid UTF-8".into())
        })?;
        let (contract_name, function) = match name.rsplit_once(':') {
            Some((contract, function)) => (contract.to_owned(), function),
            None => (
                self.default_contract.clone().ok_or_else(|| {
                    ContractError::UnknownFunction("chaincode has no contracts".into())
                })?,
                name,
            ),
        };
        if contract_name == SYSTEM_CONTRACT {
            return match function {
                "GetMetadata" if rest.is_empty() => Ok(self.metadata().to_string().into_bytes()),
                "GetMetadata" => Err(ContractError::BadArguments(
                    "GetMetadata takes no arguments".into(),
                )),
                other => Err(ContractError::UnknownFunction(format!(
                    "function {other:?} not found in contract {SYSTEM_CONTRACT:?}"
                ))),
            };
        }
        let contract = self.contracts.get(&contract_name).ok_or_else(|| {
            ContractError::UnknownFunction(format!("contract {contract_name:?} not found"))
        })?;
        let transaction = contract.transactions.get(function).ok_or_else(|| {
            ContractError::UnknownFunction(format!(
                "function {function:?} not found in contract {contract_name:?}"
            ))
        })?;
        (transaction.handler)(ledger, rest)
    }
}

impl Chaincode for Router {
    fn invoke(&self, ledger: &dyn Ledger, invocation: &Invocation<'_>) -> ChaincodeResponse {
        match self.dispatch(ledger, invocation.args) {
            Ok(payload) => ChaincodeResponse::success(payload),
            Err(error) => ChaincodeResponse::error(error.to_string()),
        }
    }
}
