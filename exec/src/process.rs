//! Background processes (being written).
