from sqlalchemy import select

from storage.models import Lead


async def test_migrated_schema_accepts_a_lead(engine, backend):
    async with engine.begin() as conn:
        await conn.execute(Lead.__table__.insert().values(display_name="张三"))
        rows = (await conn.execute(select(Lead.__table__.c.display_name))).all()
    assert rows == [("张三",)]
