//! How enums are named, in one way: declared with [`named_enum!`] (or
//! [`stored_enum!`]), each derives strum's `IntoStaticStr`, `EnumString` and
//! `VariantArray` with the same snake_case names as serde's, and gets
//! `as_str`, `parse`, `ALL` and `Display` from them. A stored enum is also
//! written to and read from a Text column by its name: a stored name the
//! code does not know fails the read loudly (it is never read as a default).
//! (The scheduler's job names, in kebab-case, use [`strum_enum!`] alone.)

/// Declares an enum named in snake_case (see the module documentation):
/// `Debug, Clone, Copy, PartialEq, Eq`, serde, its OpenAPI schema and
/// strum's names, with `as_str`, `parse`, `ALL` and `Display`. More derives
/// may be given in the enum's own attributes.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $crate::names::strum_enum! {
            "snake_case",
            $(#[$meta])*
            #[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
            #[serde(rename_all = "snake_case")]
            $vis enum $name {
                $($(#[$vmeta])* $variant),+
            }
        }
    };
}

/// Declares a plain enum (`Debug, Clone, Copy, PartialEq, Eq`) named by
/// strum in `$case`, with `as_str`, `parse`, `ALL` and `Display` (see
/// [`named!`]): the core of [`named_enum!`], and alone for names that serde
/// never writes (the scheduler's jobs, in kebab-case).
macro_rules! strum_enum {
    (
        $case:literal,
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            strum::IntoStaticStr,
            strum::EnumString,
            strum::VariantArray,
        )]
        #[strum(serialize_all = $case)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        $crate::names::named!($name);
    };
}

/// As [`named_enum!`], and stored in a Text column by its name: a stored
/// name the code does not know fails the read.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $crate::names::named_enum! {
            $(#[$meta])*
            #[derive(diesel::AsExpression, diesel::FromSqlRow)]
            #[diesel(sql_type = diesel::sql_types::Text)]
            $vis enum $name {
                $($(#[$vmeta])* $variant),+
            }
        }

        $crate::db::text_column!($name, |this| this.as_str(), |text| {
            $name::parse(&text).ok_or_else(|| {
                format!(concat!("unknown ", stringify!($name), " `{}` in the database"), text)
                    .into()
            })
        });
    };
}

/// `as_str`, `parse`, `ALL` and `Display` from strum's names.
macro_rules! named {
    ($($ty:ident),+ $(,)?) => {$(
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = <$ty as strum::VariantArray>::VARIANTS;

            /// The variant's name, as serde writes it.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The variant of a name, if there is one.
            pub fn parse(text: &str) -> Option<$ty> {
                text.parse().ok()
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

pub(crate) use {named, named_enum, stored_enum, strum_enum};

#[cfg(test)]
mod tests {
    use serde::Serialize;

    /// strum's name of every variant is serde's: the API and the database
    /// spell each value alike.
    fn agree<T: Serialize + Copy + Into<&'static str>>(all: &[T]) {
        for value in all {
            let serde = serde_json::to_value(value).unwrap();
            let name: &'static str = (*value).into();
            assert_eq!(serde.as_str(), Some(name));
        }
    }

    #[test]
    fn every_enum_is_named_alike_by_serde_and_strum() {
        use crate::workflow::engine::{Decision, ReviewKind, ReviewState, StageState};
        agree(crate::workflow::Tier::ALL);
        agree(crate::workflow::Severity::ALL);
        agree(ReviewKind::ALL);
        agree(ReviewState::ALL);
        agree(StageState::ALL);
        agree(Decision::ALL);
        agree(crate::reviews::FindingState::ALL);
        agree(crate::status::Status::ALL);
        agree(crate::auth::Role::ALL);
        agree(crate::providers::Modality::ALL);
        agree(crate::providers::Hosting::ALL);
        agree(crate::conditions::DataClass::ALL);
        agree(crate::workflow::definition::QuestionKind::ALL);
        agree(crate::outbox::MessageState::ALL);
        agree(crate::outbox::MessageKind::ALL);
    }
}
