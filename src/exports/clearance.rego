# Clearance's decision for one use of a model, as `POST /v1/status/check`
# takes it for one item: query `data.clearance.decision` with the item as
# input, `{"provider", "model", "use_case"?, "data_classes"?, "regions"?,
# "features"?}`. The answer is `{"allow", "status", "reasons",
# "valid_until"}` with the check's reason codes; `data.clearance.allow` is
# its `allow` alone.
#
# The clearances are this bundle's data (`data.clearance.snapshot`), as of the
# status version in its revision. An approval lapses at its `valid_until`
# whenever the policy is asked, not when the bundle was made: `now` is OPA's
# clock (`time.now_ns()`), or the server's when it runs a manual clock
# (time-skipping mode; `data.clearance.snapshot.now_ns`).
#
# An input the check would refuse (422: a region or use case outside the
# vocabulary, a data class that does not exist, a value of the wrong type, a
# field the check does not know) is denied with the reason `invalid_input`,
# and `errors` says why.
package clearance

import rego.v1

approvals := {"approved", "approved_with_conditions"}

fields := {"provider", "model", "use_case", "data_classes", "regions", "features"}

known_data_classes := {"public", "internal", "confidential", "personal", "special_category"}

facts := data.clearance.snapshot

now_ns := object.get(facts, "now_ns", time.now_ns())

# The model's published clearance; a model nobody reviewed is `not_reviewed`.
default published := {"status": "not_reviewed", "conditions": {}}

published := facts.models[input.provider][input.model]

# An approval past its `valid_until` reads `expired`.
status := "expired" if {
	published.status in approvals
	published.valid_until_ns <= now_ns
} else := published.status

valid_until := object.get(published, "valid_until", null)

# A limit of the approval's conditions (`null`: none), and what the input
# says of it (`null`: nothing).
limit(name) := object.get(published.conditions, name, null)

stated(name) := object.get(input, name, null) if {
	is_object(input)
} else := null

# A list the input gives; none for anything else (`errors` says why).
given(name) := values if {
	values := stated(name)
	is_array(values)
} else := []

# Codes compare without case, as the check folds them: ASCII letters only.
folded(text) := strings.replace_n(
	{
		"A": "a", "B": "b", "C": "c", "D": "d", "E": "e", "F": "f", "G": "g",
		"H": "h", "I": "i", "J": "j", "K": "k", "L": "l", "M": "m", "N": "n",
		"O": "o", "P": "p", "Q": "q", "R": "r", "S": "s", "T": "t", "U": "u",
		"V": "v", "W": "w", "X": "x", "Y": "y", "Z": "z",
	},
	text,
)

# `codes` without a code equal to the one before it, as the check lists them.
distinct(codes) := [code |
	some i, code in codes
	not repeats(codes, i)
]

repeats(codes, i) if {
	i > 0
	codes[i - 1] == codes[i]
}

use_case_reasons := [] if {
	limit("use_cases") == null
} else := ["use_case_not_stated"] if {
	stated("use_case") == null
} else := [] if {
	not is_string(input.use_case)
} else := [] if {
	folded(input.use_case) in limit("use_cases")
} else := [concat("", ["use_case_not_allowed:", input.use_case])]

data_class_reasons := [] if {
	limit("data_classes") == null
} else := ["data_classes_not_stated"] if {
	stated("data_classes") == null
} else := distinct([concat("", ["data_class_not_allowed:", class]) |
	some class in given("data_classes")
	is_string(class)
	not class in limit("data_classes")
])

region_reasons := [] if {
	limit("regions") == null
} else := ["regions_not_stated"] if {
	stated("regions") == null
} else := distinct([concat("", ["region_not_allowed:", region]) |
	some region in given("regions")
	is_string(region)
	not folded(region) in limit("regions")
])

feature_reasons := [] if {
	limit("features_off") == null
} else := [] if {
	stated("features") == null
} else := distinct([concat("", ["feature_must_be_off:", feature]) |
	some feature in given("features")
	is_string(feature)
	folded(feature) in limit("features_off")
])

# Why the use is denied; empty when it is allowed.
reasons := [status] if {
	not status in approvals
} else := array.concat(
	array.concat(use_case_reasons, data_class_reasons),
	array.concat(region_reasons, feature_reasons),
)

# Why the check would refuse the input.
errors contains "input must be an object" if not is_object(input)

errors contains sprintf("unknown field `%s`", [name]) if {
	is_object(input)
	some name, _ in input
	not name in fields
}

errors contains sprintf("`%s` must be a string", [name]) if {
	some name in ["provider", "model"]
	not is_string(stated(name))
}

errors contains "`use_case` must be a string or null" if {
	not stated("use_case") == null
	not is_string(input.use_case)
}

errors contains sprintf("unknown use case `%s`", [input.use_case]) if {
	is_string(input.use_case)
	is_array(facts.use_cases)
	not folded(input.use_case) in facts.use_cases
}

errors contains sprintf("`%s` must be a list of strings or null", [name]) if {
	some name in ["data_classes", "regions", "features"]
	not stated(name) == null
	not strings_only(stated(name))
}

strings_only(values) if {
	is_array(values)
	every value in values {
		is_string(value)
	}
}

errors contains sprintf("unknown data class `%s`", [class]) if {
	some class in given("data_classes")
	is_string(class)
	not class in known_data_classes
}

errors contains sprintf("unknown region `%s`", [region]) if {
	some region in given("regions")
	is_string(region)
	not folded(region) in facts.regions
}

decision := {
	"allow": false,
	"status": status,
	"reasons": ["invalid_input"],
	"errors": sort(errors),
	"valid_until": valid_until,
} if {
	count(errors) > 0
} else := {
	"allow": count(reasons) == 0,
	"status": status,
	"reasons": reasons,
	"valid_until": valid_until,
}

default allow := false

allow := decision.allow
