//! Glance v2: image list, create with properties, upload, download and delete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::OpenstackDriver;
use super::nova::encode;
use super::session::Service;
use crate::error::PlatformError;

/// A Glance image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub container_format: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub checksum: Option<String>,
    /// RFC 3339, as Glance writes it.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Every other field: Glance's own and the image's additional properties
    /// (`mangrove_source_vm`, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Image {
    /// An additional property's value, when it is a string.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(Value::as_str)
    }
}

impl OpenstackDriver {
    /// Every image the project can see.
    pub fn images(&self) -> Result<Vec<Image>, PlatformError> {
        self.session.list(Service::Image, "/v2/images", "images")
    }

    /// The images called `name`, newest first as Glance lists them.
    pub fn images_named(&self, name: &str) -> Result<Vec<Image>, PlatformError> {
        self.session.list(Service::Image, &format!("/v2/images?name={}", encode(name)), "images")
    }

    /// Creates an image record and uploads its data (`POST /v2/images`, then
    /// `PUT /v2/images/{id}/file`). `disk_format`: `qcow2`, `raw`, `vmdk`, …. Not idempotent:
    /// a retry after an unknown outcome can leave a second image (list first). When the
    /// upload fails the empty record is deleted.
    pub fn upload_image(
        &self,
        name: &str,
        disk_format: &str,
        reader: &mut dyn std::io::Read,
    ) -> Result<Image, PlatformError> {
        self.upload_image_with(name, disk_format, &BTreeMap::new(), reader)
    }

    /// [`upload_image`](Self::upload_image) with additional properties (strings, as Glance
    /// keeps them) set on the record; container format `bare`.
    pub fn upload_image_with(
        &self,
        name: &str,
        disk_format: &str,
        properties: &BTreeMap<String, String>,
        reader: &mut dyn std::io::Read,
    ) -> Result<Image, PlatformError> {
        let call = "POST /v2/images";
        let mut body =
            json!({"name": name, "disk_format": disk_format, "container_format": "bare", "visibility": "private"});
        for (k, v) in properties {
            body[k] = json!(v);
        }
        let reply = self.session.call(Service::Image, "POST", "/v2/images", Some(&body))?;
        let doc = self.session.json(reply, call)?;
        let image: Image = serde_json::from_value(doc).map_err(|e| self.session.malformed(call, e.to_string()))?;
        let path = format!("/v2/images/{}/file", encode(&image.id));
        let put = format!("PUT {path}");
        let uploaded = self.session.upload(Service::Image, &path, reader, &put).and_then(|reply| {
            if (200..300).contains(&reply.status) { Ok(()) } else { Err(self.session.refused(&reply, &put)) }
        });
        if let Err(e) = uploaded {
            if let Err(cleanup) = self.delete_image(&image.id) {
                tracing::warn!(image = %image.id, error = %cleanup, "cannot delete the image record of a failed upload");
            }
            return Err(e);
        }
        let get = format!("/v2/images/{}", encode(&image.id));
        let doc = self.session.get_json(Service::Image, &get)?;
        serde_json::from_value(doc).map_err(|e| self.session.malformed(&format!("GET {get}"), e.to_string()))
    }

    /// Deletes an image; one already gone is fine (idempotent).
    pub fn delete_image(&self, id: &str) -> Result<(), PlatformError> {
        let path = format!("/v2/images/{}", encode(id));
        let reply = self.session.call(Service::Image, "DELETE", &path, None)?;
        match reply.status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.session.refused(&reply, &format!("DELETE {path}"))),
        }
    }

    /// Streams an image's data into `out` (`GET /v2/images/{id}/file`); returns the bytes.
    pub fn download_image(&self, id: &str, out: &mut dyn std::io::Write) -> Result<u64, PlatformError> {
        let path = format!("/v2/images/{}/file", encode(id));
        let call = format!("GET {path}");
        match self.session.download(Service::Image, &path, out, &call)? {
            (200..=299, bytes) => Ok(bytes),
            (404, _) => Err(PlatformError::NotFound {
                endpoint: self.session.endpoint.clone(),
                what: "image data".into(),
                id: id.to_string(),
            }),
            (status, _) => Err(PlatformError::Refused {
                endpoint: self.session.endpoint.clone(),
                call,
                message: format!("HTTP {status}"),
            }),
        }
    }
}
