DROP TABLE intake_overflow;
