DROP TABLE intake_outcomes;
DROP TABLE intake_askers;
