//! Glance v2: image list and upload.

use serde::{Deserialize, Serialize};
use serde_json::json;

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
    pub size: Option<u64>,
    #[serde(default)]
    pub checksum: Option<String>,
}

impl OpenstackDriver {
    /// Every image the project can see.
    pub fn images(&self) -> Result<Vec<Image>, PlatformError> {
        self.session.list(Service::Image, "/v2/images", "images")
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
        let call = "POST /v2/images";
        let body =
            json!({"name": name, "disk_format": disk_format, "container_format": "bare", "visibility": "private"});
        let reply = self.session.call(Service::Image, "POST", "/v2/images", Some(&body))?;
        let doc = self.session.json(reply, call)?;
        let image: Image = serde_json::from_value(doc).map_err(|e| self.session.malformed(call, e.to_string()))?;
        let path = format!("/v2/images/{}/file", encode(&image.id));
        let put = format!("PUT {path}");
        let uploaded = self.session.upload(Service::Image, &path, reader, &put).and_then(|reply| {
            if (200..300).contains(&reply.status) { Ok(()) } else { Err(self.session.refused(&reply, &put)) }
        });
        if let Err(e) = uploaded {
            let del = format!("/v2/images/{}", encode(&image.id));
            if let Err(cleanup) = self.session.call(Service::Image, "DELETE", &del, None) {
                tracing::warn!(image = %image.id, error = %cleanup, "cannot delete the image record of a failed upload");
            }
            return Err(e);
        }
        let get = format!("/v2/images/{}", encode(&image.id));
        let doc = self.session.get_json(Service::Image, &get)?;
        serde_json::from_value(doc).map_err(|e| self.session.malformed(&format!("GET {get}"), e.to_string()))
    }
}
