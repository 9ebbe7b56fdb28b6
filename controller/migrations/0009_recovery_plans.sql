-- Recovery plans: every applied version of every plan, kept (drill reports name the version
-- they ran; `plans diff` compares versions). A version is added only when the text changes.
CREATE TABLE recovery_plans (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,          -- 1, 2, … per plan
    text        TEXT NOT NULL,             -- the YAML as applied
    digest      TEXT NOT NULL,             -- SHA-256 of the text, hex
    origin      TEXT NOT NULL,             -- the file name it was applied from
    applied_by  TEXT NOT NULL,
    applied_at  INTEGER NOT NULL,          -- unix ms
    PRIMARY KEY (name, version)
);
