//! The diesel schema shared by both backends. Written with portable SQL types
//! only (Text, BigInt, Integer, Bool, Timestamp), so one definition serves
//! PostgreSQL and SQLite through [`crate::db::DbConnection`].

diesel::table! {
    providers (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        website -> Nullable<Text>,
        contacts -> Text,
        notes -> Nullable<Text>,
        suspended_at -> Nullable<Timestamp>,
        suspended_reason -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    models (id) {
        id -> Text,
        provider_id -> Text,
        slug -> Text,
        name -> Text,
        model_version -> Nullable<Text>,
        modality -> Nullable<Text>,
        hosting -> Nullable<Text>,
        description -> Nullable<Text>,
        suspended_at -> Nullable<Timestamp>,
        suspended_reason -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        status_version -> BigInt,
    }
}

diesel::table! {
    reviews (id) {
        id -> Text,
        provider_id -> Text,
        model_id -> Nullable<Text>,
        kind -> Text,
        workflow_id -> Text,
        workflow_version -> BigInt,
        workflow_digest -> Text,
        state -> Text,
        tier -> Text,
        tier_reason -> Nullable<Text>,
        started_by -> Text,
        previous_review_id -> Nullable<Text>,
        conditions -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        valid_until -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        started_by_email -> Nullable<Text>,
        expired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    review_stages (id) {
        id -> Text,
        review_id -> Text,
        stage_key -> Text,
        state -> Text,
        answer_assignee -> Nullable<Text>,
        due_at -> Nullable<Timestamp>,
        escalation_level -> Integer,
        opened_at -> Nullable<Timestamp>,
        submitted_at -> Nullable<Timestamp>,
        submitted_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        round -> Integer,
        answerers -> Text,
        decide_assignee -> Nullable<Text>,
    }
}

diesel::table! {
    answers (id) {
        id -> Text,
        stage_id -> Text,
        question_id -> Text,
        value -> Text,
        answered_by -> Text,
        carried_forward -> Bool,
        previous_value -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    decisions (id) {
        id -> Text,
        stage_id -> Text,
        decision -> Text,
        actor_sub -> Text,
        actor_email -> Nullable<Text>,
        comment -> Nullable<Text>,
        conditions -> Nullable<Text>,
        created_at -> Timestamp,
        round -> Integer,
        answers_then -> Nullable<Text>,
    }
}

diesel::table! {
    findings (id) {
        id -> Text,
        review_id -> Text,
        stage_key -> Nullable<Text>,
        severity -> Text,
        text -> Text,
        owner -> Nullable<Text>,
        remediation_due -> Nullable<Timestamp>,
        state -> Text,
        resolution -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        source -> Nullable<Text>,
        resolved_by -> Nullable<Text>,
        raised_by_value -> Nullable<Text>,
    }
}

diesel::table! {
    question_comments (id) {
        id -> Text,
        stage_id -> Text,
        question_id -> Text,
        body -> Text,
        author -> Text,
        round -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    respondent_tokens (id) {
        id -> Text,
        stage_id -> Text,
        email -> Text,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    supplier_notices (invitation_id) {
        invitation_id -> Text,
        review_id -> Text,
        email -> Text,
        stage_key -> Text,
        opened_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    suspension_notices (subject, email) {
        subject -> Text,
        email -> Text,
        audience -> Text,
        sub -> Nullable<Text>,
        told_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        actor -> Text,
        actor_roles -> Text,
        action -> Text,
        subject -> Text,
        review_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        before_data -> Nullable<Text>,
        after_data -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    outbox_messages (id) {
        id -> Text,
        kind -> Text,
        dedup_key -> Nullable<Text>,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        url -> Text,
        secret -> Text,
        events -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    status_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    workflow_definitions (digest) {
        digest -> Text,
        workflow_id -> Text,
        version -> BigInt,
        source -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    people (sub) {
        sub -> Text,
        email -> Nullable<Text>,
        roles -> Text,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    role_mailboxes (role) {
        role -> Text,
        emails -> Text,
        updated_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(models -> providers (provider_id));
diesel::joinable!(reviews -> providers (provider_id));
diesel::joinable!(reviews -> models (model_id));
diesel::joinable!(review_stages -> reviews (review_id));
diesel::joinable!(answers -> review_stages (stage_id));
diesel::joinable!(decisions -> review_stages (stage_id));
diesel::joinable!(findings -> reviews (review_id));
diesel::joinable!(respondent_tokens -> review_stages (stage_id));
diesel::joinable!(question_comments -> review_stages (stage_id));

diesel::allow_tables_to_appear_in_same_query!(
    providers,
    models,
    reviews,
    review_stages,
    answers,
    decisions,
    findings,
    respondent_tokens,
    question_comments,
    audit_events,
    audit_head,
    outbox_messages,
    webhooks,
    status_version,
    workflow_definitions,
    people,
    role_mailboxes,
);

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        sub -> Text,
        email -> Nullable<Text>,
        name -> Nullable<Text>,
        roles -> Text,
        csrf -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sign_ins (state) {
        state -> Text,
        verifier -> Text,
        nonce -> Text,
        return_to -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sign_in_links (jti) {
        jti -> Text,
        used_at -> Timestamp,
    }
}

diesel::table! {
    intake_askers (provider, model, sub, use_case) {
        provider -> Text,
        model -> Text,
        sub -> Text,
        use_case -> Text,
        asked -> BigInt,
        first_seen -> Timestamp,
        last_seen -> Timestamp,
    }
}

diesel::table! {
    intake_overflow (sub, day) {
        sub -> Text,
        day -> Timestamp,
        names -> BigInt,
        asked -> BigInt,
        last_seen -> Timestamp,
    }
}

diesel::table! {
    model_usage (provider, model, hour, sub, use_case) {
        provider -> Text,
        model -> Text,
        hour -> Timestamp,
        sub -> Text,
        use_case -> Text,
        allowed -> BigInt,
        denied -> BigInt,
    }
}

diesel::table! {
    intake_outcomes (provider, model) {
        provider -> Text,
        model -> Text,
        state -> Text,
        reason -> Nullable<Text>,
        review_id -> Nullable<Text>,
        decided_by -> Text,
        decided_at -> Timestamp,
    }
}
