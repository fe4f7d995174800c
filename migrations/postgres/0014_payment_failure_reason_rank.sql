-- How telling the field a payment failure's decline reason came from is (0: none, `other`;
-- 1 the payment error's code, 2 the charge's failure_code, 3 the payment error's decline_code,
-- 4 the charge's outcome.reason): the events of one try merge to the reason of the highest
-- rank, whichever arrives first. Rows written before keep their reason against `other` (1).
ALTER TABLE payment_failures ADD COLUMN reason_rank INTEGER NOT NULL DEFAULT 0;
UPDATE payment_failures SET reason_rank = 1 WHERE reason <> 'other';
