-- Which report the stored fact snapshot came from. Snapshots replace each other in report
-- order, not by the agent's timestamp: an agent whose clock runs behind must still be able to
-- replace the snapshot it sent before its clock was set back.
ALTER TABLE hosts ADD COLUMN facts_seq INTEGER;
