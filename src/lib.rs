//! parqour: Avro object container files in object storage -> Athena-ready Parquet.
//!
//! The modules follow the data flow:
//!
//! ```text
//! source (object_store)  ->  avro (header, blocks, codecs)  ->  decode (Arrow batches)
//!        ->  encode (Parquet row groups, columns in parallel)  ->  sink (object_store, publish)
//! ```
//!
//! [`convert`] drives that pipeline; [`cli`] is the command line over it; [`inspect`] and
//! [`demo`] are tools beside it.
//!
//! Records of many writer schemas: the [`registry`] holds writer schemas by fingerprint;
//! [`schemas`] picks each data type's reader schema and the plans that resolve every writer
//! schema to it ([`decode::resolve`]); `DataWrapper` envelopes are read by [`avro::envelope`];
//! what cannot be converted goes to the [`deadletter`] place. [`metrics`] writes the EMF lines.
//!
//! On AWS: [`trigger`] turns "partition closed" messages into manifests ([`manifest`]) and AWS
//! Batch jobs ([`batch`]) that run the partition job ([`job`]); [`backfill`] does the same for a
//! range of hours; [`layout`] says where a data type's raw objects, table and manifests are.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod avro;
pub mod backfill;
pub mod batch;
pub mod cli;
pub mod convert;
pub mod deadletter;
pub mod decode;
pub mod demo;
pub mod encode;
mod hash;
pub mod inspect;
pub mod job;
pub mod layout;
pub mod manifest;
pub mod metrics;
pub mod registry;
pub mod schemas;
pub mod sink;
pub mod source;
pub mod storage;
pub mod trigger;

#[cfg(test)]
mod test_store;
