//! Security-level policies in the controller: the shipped packs compiled once, who they apply
//! to (`scope`), and evaluating a host's facts against them (`evaluate`), with waivers applied
//! and findings kept with their history.

pub mod evaluate;
pub mod scope;

use std::collections::HashMap;
use std::sync::Arc;

/// The packs this controller evaluates, each compiled once and shared.
pub struct Policies {
    pub packs: Vec<policies::Pack>,
    evaluators: HashMap<String, Arc<policies::Evaluator>>,
}

impl Policies {
    /// The packs shipped in this binary. A pack that does not load or compile is a bug in the
    /// build, reported at start rather than at the first evaluation.
    pub fn shipped() -> Result<Policies, String> {
        let packs = policies::shipped().map_err(|e| format!("shipped policy packs: {e}"))?;
        let mut evaluators = HashMap::new();
        for p in &packs {
            let e = policies::Evaluator::new(p).map_err(|e| format!("policy pack {}: {e}", p.name))?;
            evaluators.insert(p.name.clone(), Arc::new(e));
        }
        Ok(Policies { packs, evaluators })
    }

    pub fn evaluator(&self, pack: &str) -> Option<Arc<policies::Evaluator>> {
        self.evaluators.get(pack).cloned()
    }

    pub fn pack(&self, name: &str) -> Option<&policies::Pack> {
        self.packs.iter().find(|p| p.name == name)
    }

    /// The pack's control with this id.
    pub fn control(&self, pack: &str, id: &str) -> Option<&policies::ControlMeta> {
        self.pack(pack).and_then(|p| p.control(id)).map(|c| &c.meta)
    }
}
