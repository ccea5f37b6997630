import { render, screen } from "@testing-library/react";
import { expect, test } from "vitest";
import { Button } from "./Button";

test("renders its label", () => {
  render(<Button>Save</Button>);
  expect(screen.getByRole("button").textContent).toBe("Save");
});
