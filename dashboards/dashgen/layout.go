package main

// board is a dashboard as boards.go declares it: sections of panels in
// reading order. dashboard() turns it into Grafana's JSON model, placing
// the panels and numbering them.
type board struct {
	uid, title, description string
	from                    string // the default time range is from..now
	variables               []obj
	sections                []section
}

// section is a row and the panels under it, laid out left to right and
// wrapped at the grid's 24 columns.
type section struct {
	title string
	// collapsed rows keep their panels inside the row, unqueried until
	// someone opens it.
	collapsed bool
	// repeat names a variable: Grafana repeats the row once per selected
	// value, with the variable set to that value inside it.
	repeat string
	panels []*Panel
}

// gridWidth is the width of Grafana's grid in columns.
const gridWidth = 24

// tag marks every Parley board; the boards' header links list the boards
// with it.
const tag = "parley"

func (b board) dashboard() Dashboard {
	d := Dashboard{
		UID:           b.uid,
		Title:         b.title,
		Description:   b.description,
		Tags:          []string{tag},
		Editable:      false, // provisioned: changes belong in dashgen
		GraphTooltip:  1,     // a shared crosshair lines up cause and effect across panels
		Refresh:       "30s",
		SchemaVersion: schemaVersion,
		Time:          obj{"from": b.from, "to": "now"},
		Timepicker:    obj{},
		Timezone:      "browser",
		Version:       1,
		Annotations: obj{"list": []obj{{
			"builtIn":    1,
			"datasource": obj{"type": "grafana", "uid": "-- Grafana --"},
			"enable":     true,
			"hide":       true,
			"iconColor":  "rgba(0, 211, 255, 1)",
			"name":       "Annotations & Alerts",
			"type":       "dashboard",
		}}},
		Links: []DashboardLink{{
			Title:       "Parley boards",
			Type:        "dashboards",
			Tags:        []string{tag},
			AsDropdown:  false,
			IncludeVars: true,
			KeepTime:    true,
			Icon:        "external link",
		}},
		Templating: obj{"list": b.variables},
	}
	d.Panels = layout(b.sections)
	return d
}

// layout places the sections' rows and panels on the grid and numbers them
// in reading order, so ids and positions only change where the
// declarations do.
func layout(sections []section) []*Panel {
	var top []*Panel
	id, y := 0, 0
	next := func() int { id++; return id }
	for _, s := range sections {
		row := &Panel{
			ID:        next(),
			Type:      "row",
			Title:     s.title,
			GridPos:   GridPos{X: 0, Y: y, W: gridWidth, H: 1},
			Collapsed: new(s.collapsed),
			Repeat:    s.repeat,
			Panels:    []*Panel{},
		}
		top = append(top, row)
		y++
		x, lineHeight, bottom := 0, 0, y
		for _, p := range s.panels {
			if x+p.w > gridWidth {
				y += lineHeight
				x, lineHeight = 0, 0
			}
			p.ID = next()
			p.GridPos = GridPos{X: x, Y: y, W: p.w, H: p.h}
			x += p.w
			lineHeight = max(lineHeight, p.h)
			bottom = y + lineHeight
		}
		if s.collapsed {
			// Grafana keeps the positions the panels take when the row
			// opens; until then the row takes one line.
			row.Panels = s.panels
			y = row.GridPos.Y + 1
			continue
		}
		top = append(top, s.panels...)
		y = bottom
	}
	return top
}
