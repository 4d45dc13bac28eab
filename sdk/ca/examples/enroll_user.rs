//! Registers and enrols a user with the CA of a test-network connection profile and writes
//! its MSP folder (usable by medfabric-gateway and as the peer CLI's local MSP).
//!
//! ```sh
//! cargo run -p medfabric-ca --example enroll_user -- \
//!     test-network/.state/connection/hospital1.json dr-alice /tmp/dr-alice/msp role=physician dept=cardiology
//! eval "$(test-network/network.sh env hospital1)"
//! CORE_PEER_MSPCONFIGPATH=/tmp/dr-alice/msp peer chaincode query -C storage -n basic \
//!     -c '{"Args":["org.hyperledger.fabric:GetMetadata"]}'
//! ```
//!
//! Attributes are `name=value` and go into the certificate (`ecert`). The registrar is the
//! profile's `registrar` (test only). With `--pseudonym`, the MSP folder is that of a fresh
//! pseudonym of the user instead (same attributes, random name).

use std::error::Error;
use std::time::SystemTime;

use medfabric_ca::{CaClient, EnrollmentRequest, PseudonymRequest, RegistrationRequest};
use medfabric_gateway::{ConnectionProfile, P256Signer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let pseudonym = args.iter().any(|a| a == "--pseudonym");
    args.retain(|a| a != "--pseudonym");
    let [profile, user, out, attributes @ ..] = args.as_slice() else {
        return Err(
            "usage: enroll_user PROFILE.json ENROLLMENT_ID MSP_DIR [name=value ...] [--pseudonym]"
                .into(),
        );
    };
    let profile = ConnectionProfile::load(profile)?;
    let ca = profile.require_certificate_authority()?;
    let registrar = ca
        .registrar
        .as_ref()
        .ok_or_else(|| format!("the profile names no registrar for {}", ca.key))?;
    let client = CaClient::builder_for(ca).build()?;

    let admin = client
        .enroll(
            &EnrollmentRequest::for_registrar(registrar),
            P256Signer::generate()?,
        )
        .await?;
    let mut registration = RegistrationRequest::new(user.as_str());
    for attribute in attributes {
        let (name, value) = attribute
            .split_once('=')
            .ok_or(format!("attribute {attribute:?} is not name=value"))?;
        registration = registration.ecert_attribute(name, value);
    }
    let secret = client.register(&admin.credential(), &registration).await?;
    let enrollment = client
        .enroll(
            &EnrollmentRequest::new(user.as_str(), secret),
            P256Signer::generate()?,
        )
        .await?;
    let enrollment = if pseudonym {
        let request = PseudonymRequest::new(enrollment.certificate_pem(), &mut rand::rngs::OsRng);
        let pseudonym = client
            .enroll_pseudonym(
                &admin.credential(),
                &request,
                P256Signer::generate()?,
                SystemTime::now(),
            )
            .await?;
        println!("pseudonym {} for {user}", pseudonym.pseudonym);
        pseudonym.enrollment
    } else {
        enrollment
    };
    enrollment.write_msp_dir(out)?;
    println!(
        "{} enrolled with {}; MSP folder {out}",
        enrollment.enrollment_id(),
        enrollment.ca().ca_name
    );
    Ok(())
}
